"""Sensor drivers: each takes a bus object, never builds one (the board layer does)."""
