"""Simulated ESP32 board for the MicroPython unix VM.

The device folder is the process's working directory; `sim.json` there holds
the simulated hardware (seed, MAC, room, faults). Files the sim keeps
(RTC memory, NVS, partitions, readings) live next to it.
"""
