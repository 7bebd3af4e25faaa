"""OTA tests share the firmware fixtures (VM, broker, subscriber) and the fleet's context."""

from tests.firmware.conftest import (  # noqa: F401
    micropython_bin,
    subscriber,
    test_broker,
    vm,
)
from tests.fleet.conftest import fleet_ctx  # noqa: F401
