"""Errors of the case service; the API maps them to 404, 409 and 422."""

from __future__ import annotations


class CaseError(Exception):
    """Base class: the message says what to do."""


class CaseNotFound(CaseError):
    """No such case, or it belongs to a borough the caller cannot see."""


class CaseConflict(CaseError):
    """The case is closed, or the step was already recorded."""


class InvalidStep(CaseError):
    """The step or its date does not fit the case (out of order, in the future ...)."""
