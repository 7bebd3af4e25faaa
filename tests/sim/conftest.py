"""Virtual-device tests share the firmware fixtures (VM, broker, subscriber)."""

from tests.firmware.conftest import (  # noqa: F401
    micropython_bin,
    subscriber,
    test_broker,
    vm,
)
