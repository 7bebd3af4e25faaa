"""City sensor firmware package (MicroPython; also runs in the unix VM)."""

FW_VERSION = "0.1.0"
