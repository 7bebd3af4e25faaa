"""The release file passed between `fleet release build`, `sign` and `upload`: a zip with
manifest.json (the signed text), sigs.json ([[kid, signature hex], ...]) and blob.bin."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet.ota.bundle import Built
from fleet.ota.errors import OtaError
from fleet.ota.signing import SigningKey


@dataclass
class ReleaseFile:
    manifest: bytes
    blob: bytes
    sigs: list[list[str]] = field(default_factory=list)
    raw_size: int = 0

    @classmethod
    def from_built(cls, built: Built) -> ReleaseFile:
        return cls(built.manifest, built.blob, [], built.raw_size)

    @property
    def info(self) -> dict[str, Any]:
        return dict(json.loads(self.manifest))

    def sign(self, key: SigningKey) -> None:
        self.sigs = [s for s in self.sigs if s[0] != key.kid] + [key.sign(self.manifest)]

    def save(self, path: Path) -> None:
        check_writable(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        try:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
                z.writestr("manifest.json", self.manifest)
                z.writestr("sigs.json", json.dumps(self.sigs))
                z.writestr("blob.bin", self.blob)
                z.writestr("meta.json", json.dumps({"raw_size": self.raw_size}))
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise OtaError(f"cannot write {path}: {exc.strerror or exc}") from exc

    @classmethod
    def load(cls, path: Path) -> ReleaseFile:
        try:
            with zipfile.ZipFile(path) as z:
                meta = json.loads(z.read("meta.json"))
                return cls(
                    z.read("manifest.json"),
                    z.read("blob.bin"),
                    json.loads(z.read("sigs.json")),
                    int(meta.get("raw_size", 0)),
                )
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise OtaError(
                f"{path} is not a release file from `fleet release build`: {exc}"
            ) from exc


def check_writable(path: Path) -> None:
    """Fail before the work of a build: the folder must be there and the path not one."""
    if not path.parent.is_dir():
        raise OtaError(f"folder {path.parent} does not exist; create it or choose another path")
    if path.is_dir():
        raise OtaError(f"{path} is a folder; give the release file's name")
