"""Render the shipped Mosquitto configuration (deploy/mosquitto) with local paths and port."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fleet.identity.errors import TemplateError
from fleet.identity.files import write_public

CONF_FILE = "mosquitto.conf"
ACL_FILE = "acl"
DEFAULT_PORT = 8883


def default_template_dir() -> Path:
    """`deploy/mosquitto` of this source tree."""
    return Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"


@dataclass(frozen=True)
class BrokerFiles:
    """Where the rendered configuration tells Mosquitto to find everything."""

    cafile: Path
    certfile: Path
    keyfile: Path
    crlfile: Path
    acl_file: Path
    persistence_location: Path


def render_conf(
    template: str,
    files: BrokerFiles,
    *,
    port: int = DEFAULT_PORT,
    bind_address: str | None = None,
    run_as: str | None = None,
) -> str:
    """Replace the value of each path setting, the listener line and optionally `user`.

    Every other line, comments included, is kept, so the rendered file reads like the shipped
    one. A template missing one of these settings is refused rather than silently rendered.
    """
    listener = f"listener {port}" + (f" {bind_address}" if bind_address else "")
    values = {
        "listener": listener,
        "cafile": f"cafile {files.cafile}",
        "certfile": f"certfile {files.certfile}",
        "keyfile": f"keyfile {files.keyfile}",
        "crlfile": f"crlfile {files.crlfile}",
        "acl_file": f"acl_file {files.acl_file}",
        # Mosquitto wants the trailing slash on this one.
        "persistence_location": f"persistence_location {files.persistence_location}/",
    }
    if run_as is not None:
        values["user"] = f"user {run_as}"
    seen: set[str] = set()
    out: list[str] = []
    for line in template.splitlines():
        key = (
            line.split(maxsplit=1)[0] if line.strip() and not line.lstrip().startswith("#") else ""
        )
        if key in values:
            if key in seen:
                raise TemplateError(
                    f"the broker template sets {key!r} twice; keep one listener per template"
                )
            seen.add(key)
            out.append(values[key])
        else:
            out.append(line)
    missing = sorted(set(values) - seen)
    if missing:
        raise TemplateError(
            f"the broker template lacks {', '.join(missing)}; restore deploy/mosquitto/{CONF_FILE}"
        )
    return "\n".join(out) + "\n"


def write_broker_config(
    out_dir: Path,
    files: BrokerFiles,
    *,
    port: int = DEFAULT_PORT,
    bind_address: str | None = None,
    run_as: str | None = None,
    template_dir: Path | None = None,
) -> Path:
    """Write `mosquitto.conf` (rendered) and the ACL file; returns the config's path."""
    source = template_dir or default_template_dir()
    conf_template = source / CONF_FILE
    acl_template = source / ACL_FILE
    for needed in (conf_template, acl_template):
        if not needed.exists():
            raise TemplateError(
                f"broker template {needed} not found: pass --template-dir pointing at a copy "
                "of deploy/mosquitto from the source tree"
            )
    conf = render_conf(
        conf_template.read_text(), files, port=port, bind_address=bind_address, run_as=run_as
    )
    write_public(files.acl_file, acl_template.read_bytes())
    conf_path = out_dir / CONF_FILE
    write_public(conf_path, conf.encode())
    return conf_path
