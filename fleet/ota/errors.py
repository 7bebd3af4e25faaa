"""The OTA error model: one exception type whose message says what to do."""

from __future__ import annotations


class OtaError(Exception):
    """A release or rollout request cannot be carried out; the message says why and what to do."""


class NotFound(OtaError):
    pass


class NoBroker(OtaError):
    """Offers cannot be withdrawn without a broker connection; trying again later may work."""


class Invalid(OtaError):
    """The request itself is malformed (a blank or unknown field): fix it and send it again."""
