"""Virtual-device helpers: put a trust store on a device's simulated flash (what provisioning
does on a real one) and read back its OTA files, through the VM's own littlefs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from fleet.ota.errors import OtaError
from fleet.simulator.paths import FROZEN_PATH, SIM_DIR, find_micropython

_MOUNT = "import sys\nsys.path.insert(0, '')\nfrom simdev import flash\nroot = flash.mount()\n"


def _run(device_dir: Path, code: str) -> str:
    env = dict(os.environ, MICROPYPATH=os.pathsep.join([str(SIM_DIR), FROZEN_PATH]))
    result = subprocess.run(
        [str(find_micropython()), "-X", "heapsize=256K", "-c", _MOUNT + code],
        cwd=device_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise OtaError(f"flash access failed in {device_dir}: {result.stdout}{result.stderr}")
    return result.stdout


def write_trust(device_dir: Path, keys: dict[str, str], floor: str | None = None) -> None:
    """ota/trust.json on the device's flash: the release keys it accepts, and its floor."""
    device_dir.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"keys": keys, "floor": floor or "0.0.0"})
    _run(
        device_dir,
        "import os\ntry:\n    os.mkdir(root + 'ota')\nexcept OSError:\n    pass\n"
        f"with open(root + 'ota/trust.json', 'w') as f:\n    f.write({body!r})\n",
    )


def read_files(
    device_dir: Path, names: tuple[str, ...] = ("ota/app", "ota/trust.json")
) -> dict[str, Any]:
    """{name: parsed JSON or None} of OTA files on the device's flash, plus "apps": [...]."""
    code = (
        "import json, os\nout = {}\n"
        f"for n in {list(names)!r}:\n"
        "    try:\n        out[n] = json.loads(open(root + n).read())\n"
        "    except (OSError, ValueError):\n        out[n] = None\n"
        "try:\n    out['apps'] = sorted(os.listdir(root + 'apps'))\n"
        "except OSError:\n    out['apps'] = []\n"
        "print('RESULT', json.dumps(out))\n"
    )
    for line in _run(device_dir, code).splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:]))
    raise OtaError("no result from the flash reader")
