"""Line-oriented log on the console (UART on the device, the log file in the VM)."""

import time

_start = time.ticks_ms()


def log(*parts) -> None:
    ms = time.ticks_diff(time.ticks_ms(), _start)
    print("[%d.%03d]" % (ms // 1000, ms % 1000), *parts)
