"""Device identity: the fleet's certificate authority, device and service certificates, CRLs."""

from fleet.identity.ca import (
    CA_VALIDITY_DAYS,
    LEAF_VALIDITY_DAYS,
    CertificateAuthority,
    Revocation,
)
from fleet.identity.errors import (
    CAExistsError,
    CAKeyMismatchError,
    CAMissingError,
    IdentityError,
    InvalidNameError,
    PassphraseRequiredError,
    RevocationStoreError,
    TemplateError,
    UnsupportedKeyError,
    WrongPassphraseError,
)
from fleet.identity.issued import IssuedCertificate
from fleet.identity.names import API_ACCOUNT, FEED_ACCOUNT, INGEST_ACCOUNT, device_urn, numbered
from fleet.identity.rotation import needs_rotation
from fleet.identity.store import CRL_VALIDITY_DAYS, CAStore

__all__ = [
    "API_ACCOUNT",
    "CA_VALIDITY_DAYS",
    "CRL_VALIDITY_DAYS",
    "FEED_ACCOUNT",
    "INGEST_ACCOUNT",
    "LEAF_VALIDITY_DAYS",
    "CAExistsError",
    "CAKeyMismatchError",
    "CAMissingError",
    "CAStore",
    "CertificateAuthority",
    "IdentityError",
    "InvalidNameError",
    "IssuedCertificate",
    "PassphraseRequiredError",
    "Revocation",
    "RevocationStoreError",
    "TemplateError",
    "UnsupportedKeyError",
    "WrongPassphraseError",
    "device_urn",
    "needs_rotation",
    "numbered",
]
