"""When a certificate is due for renewal."""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509

ROTATE_BEFORE_DAYS = 30


def needs_rotation(
    cert: x509.Certificate, now: datetime, before_days: int = ROTATE_BEFORE_DAYS
) -> bool:
    """True once `now` is within `before_days` of the certificate's expiry, or past it."""
    if now.tzinfo is None:
        raise ValueError("pass an aware datetime (e.g. datetime.now(UTC)), not a naive one")
    if before_days < 0:
        raise ValueError(f"before_days must not be negative, not {before_days}")
    return now >= cert.not_valid_after_utc - timedelta(days=before_days)
