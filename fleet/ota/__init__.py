"""Over-the-air updates: signed releases, rollouts in waves that pause themselves, pinning.

- `bundle`   build app bundles (firmware compiled to .mpy, deflated, manifest of hashes)
- `image`    ESP-IDF app images: read their version; build small ones for the simulator
- `signing`  release signing keys (Ed25519), signatures and their checks
- `package`  the release file handed between `fleet release build/sign/upload`
- `service`  releases, trusted keys, pins and device history in the database
- `rollout`  waves, automatic pause, offers on `cs/v1/d/{id}/ota`
- `progress` device reports on `ota/progress`
docs/ota.md describes the whole path.
"""
