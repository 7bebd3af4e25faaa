"""Enrolment's exceptions; each message tells the caller what to do next."""

from __future__ import annotations


class EnrolmentError(Exception):
    """Base class for every refusal of the enrolment service."""


class BoroughNotPermitted(EnrolmentError):
    """The asking principal does not cover the borough (or it does not exist)."""


class AlreadyEnrolledElsewhere(EnrolmentError):
    """The device is placed somewhere else; moving it is a deliberate staff action."""


class WifiProfileMissing(EnrolmentError):
    """The borough has no Wi-Fi profile by that name, so the device could never connect."""


class DeviceNotEnrolled(EnrolmentError):
    """No such device, or it is outside the principal's boroughs."""


class RotationNotDue(EnrolmentError):
    """The current certificate is far from expiry; rotating now needs `force`."""


class CertificateNotFound(EnrolmentError):
    """No certificate with that serial was issued by this fleet."""


class CANotReady(EnrolmentError):
    """The device CA is missing or locked; an operator must set it up."""
