"""One error model for the CLI: every failure is a ProvisionError with a remedy and an exit code.

Lower layers raise these `from` the underlying cause; `provisioning.cli.main` is the only
place that turns them into output and an exit status (tracebacks only with --verbose).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # an unexpected error (a bug): run again with --verbose and report it
    USAGE = 2  # bad arguments or input file
    NO_SERIAL_PORT = 3
    PORT_PERMISSION = 4
    WRONG_CHIP = 5
    DEVICE_NOT_RESPONDING = 6
    IMAGE_INVALID = 7
    FLEET_UNREACHABLE = 8
    TOKEN_REJECTED = 9
    BOROUGH_NOT_PERMITTED = 10
    ENROLLED_ELSEWHERE = 11
    WIFI_PROFILE_MISSING = 12
    VERIFY_FAILED = 13
    FLEET_REFUSED = 14
    BATCH_INCOMPLETE = 15
    INTERRUPTED = 130


class ProvisionError(Exception):
    """Something the technician can act on: `str()` says what happened, `remedy` what to do."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, remedy: str) -> None:
        super().__init__(message)
        self.remedy = remedy


class UsageError(ProvisionError):
    exit_code = ExitCode.USAGE


class NoSerialPort(ProvisionError):
    exit_code = ExitCode.NO_SERIAL_PORT


class PortPermissionDenied(ProvisionError):
    exit_code = ExitCode.PORT_PERMISSION


class WrongChip(ProvisionError):
    exit_code = ExitCode.WRONG_CHIP


class DeviceNotResponding(ProvisionError):
    exit_code = ExitCode.DEVICE_NOT_RESPONDING


class ImageInvalid(ProvisionError):
    exit_code = ExitCode.IMAGE_INVALID


class FleetUnreachable(ProvisionError):
    exit_code = ExitCode.FLEET_UNREACHABLE


class TokenRejected(ProvisionError):
    exit_code = ExitCode.TOKEN_REJECTED


class BoroughNotPermitted(ProvisionError):
    exit_code = ExitCode.BOROUGH_NOT_PERMITTED


class EnrolledElsewhere(ProvisionError):
    exit_code = ExitCode.ENROLLED_ELSEWHERE


class WifiProfileMissing(ProvisionError):
    exit_code = ExitCode.WIFI_PROFILE_MISSING


class VerifyFailed(ProvisionError):
    exit_code = ExitCode.VERIFY_FAILED


class FleetRefused(ProvisionError):
    exit_code = ExitCode.FLEET_REFUSED


class BatchIncomplete(ProvisionError):
    exit_code = ExitCode.BATCH_INCOMPLETE


DIALOUT_REMEDY = (
    "add yourself to the group that owns the port and log in again: "
    "`sudo usermod -aG {group} $USER` (then log out and back in, or run `newgrp {group}`)"
)
