"""Render the shipped Mosquitto configuration (deploy/mosquitto) with local paths and port."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def render_acl(template: str, identities: Mapping[str, Sequence[str]]) -> str:
    """Write each role's `user <role>` block once per identity of that role.

    A role block is the `user` line and the `topic` lines that follow it; the role's name in
    its topics (the `topic deny cs/v1/d/<role>/#` line) becomes the identity's. A role whose
    identities are numbered (fleet-ingest-0, ...) also gets a block denying everything to the
    bare role name, the certificate earlier versions shared between processes. A template
    without a block for a role is refused rather than rendered without its rights.
    """
    lines = template.splitlines()
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(lines):
        parts = lines[i].split()
        role = parts[1] if len(parts) == 2 and parts[0] == "user" else ""
        if role not in identities:
            out.append(lines[i])
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].split()[:1] == ["topic"]:
            end += 1
        rules = lines[i + 1 : end]
        if role in seen:
            raise TemplateError(f"the ACL template has two `user {role}` blocks; keep one")
        seen.add(role)
        names = list(identities[role])
        for n, name in enumerate(names):
            if n:
                out.append("")
            out.append(f"user {name}")
            out += [rule.replace(f"/{role}/", f"/{name}/") for rule in rules]
        if role not in names:
            if names:
                out.append("")
            out += [f"user {role}", "topic deny #"]
        i = end
    missing = sorted(set(identities) - seen)
    if missing:
        raise TemplateError(
            f"the ACL template lacks a `user` block for {', '.join(missing)}; restore "
            f"deploy/mosquitto/{ACL_FILE}"
        )
    return "\n".join(out) + "\n"


def write_acl(
    path: Path, identities: Mapping[str, Sequence[str]], *, template_dir: Path | None = None
) -> Path:
    """Render the ACL template for these identities into `path` (atomically)."""
    template = (template_dir or default_template_dir()) / ACL_FILE
    if not template.exists():
        raise TemplateError(
            f"ACL template {template} not found: pass --template-dir pointing at a copy "
            "of deploy/mosquitto from the source tree"
        )
    write_public(path, render_acl(template.read_text(), identities).encode())
    return path


def write_broker_config(
    out_dir: Path,
    files: BrokerFiles,
    *,
    identities: Mapping[str, Sequence[str]],
    port: int = DEFAULT_PORT,
    bind_address: str | None = None,
    run_as: str | None = None,
    template_dir: Path | None = None,
) -> Path:
    """Write `mosquitto.conf` and the ACL (one block per service identity, by role); returns
    the config's path."""
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
    write_acl(files.acl_file, identities, template_dir=source)
    conf_path = out_dir / CONF_FILE
    write_public(conf_path, conf.encode())
    return conf_path
