"""The technician's `provision` CLI: flash, enrol, install, verify and label ESP32 sensors."""

__version__ = "0.1.0"
