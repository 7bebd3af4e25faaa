"""Enrolment: technicians register devices into places and receive their identity bundle.

`service.enrol` places and registers a device and issues its client certificate from the
device CA (`fleet.identity`); `service.rotate` re-issues before expiry; `certificates.revoke`
(admins) revokes and publishes a new CRL for the broker; `wifi` keeps per-borough Wi-Fi
profiles with passwords encrypted at rest (`secrets.SecretBox`).
"""

from fleet.enrolment.errors import (
    AlreadyEnrolledElsewhere,
    BoroughNotPermitted,
    CANotReady,
    CertificateNotFound,
    DeviceNotEnrolled,
    EnrolmentError,
    RotationNotDue,
    WifiProfileMissing,
)
from fleet.enrolment.service import Enrolment, EnrolmentRequest, enrol, rotate

__all__ = [
    "AlreadyEnrolledElsewhere",
    "BoroughNotPermitted",
    "CANotReady",
    "CertificateNotFound",
    "DeviceNotEnrolled",
    "Enrolment",
    "EnrolmentError",
    "EnrolmentRequest",
    "RotationNotDue",
    "WifiProfileMissing",
    "enrol",
    "rotate",
]
