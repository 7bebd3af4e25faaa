"""Public-key crypto the ESP32 port lacks: SHA-512 and Ed25519 signature verification."""
