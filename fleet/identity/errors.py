"""The identity boundary's exceptions; every message says what to do next."""

from __future__ import annotations


class IdentityError(Exception):
    """Base class: something about the device CA, a certificate or a CRL is wrong."""


class CAMissingError(IdentityError):
    """The CA certificate or key file is not where it should be."""


class CAExistsError(IdentityError):
    """Refusing to overwrite an existing CA (that would orphan every issued certificate)."""


class PassphraseRequiredError(IdentityError):
    """The CA key is encrypted and no passphrase was given."""


class WrongPassphraseError(IdentityError):
    """The passphrase does not decrypt the CA key."""


class CAKeyMismatchError(IdentityError):
    """The CA key does not belong to the CA certificate beside it."""


class UnsupportedKeyError(IdentityError):
    """A key or certificate that is not ECDSA P-256."""


class InvalidNameError(IdentityError, ValueError):
    """A device id, service account name or host name that cannot go into a certificate."""


class RevocationStoreError(IdentityError):
    """The revocation register cannot be read."""


class TemplateError(IdentityError):
    """The broker configuration template lacks a setting the renderer must fill in."""
