"""Render the shipped Mosquitto configuration (deploy/mosquitto) with local paths and port."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fleet.identity.errors import TemplateError
from fleet.identity.files import write_public

CONF_FILE = "mosquitto.conf"
ACL_FILE = "acl"
DEFAULT_PORT = 8883
# The ACL template's last line. What follows it in an existing ACL is the site's own (feed
# consumer blocks, mostly) and is carried into every re-rendered file.
LOCAL_MARKER = "# === Local additions: kept when the ACL is re-rendered; add your blocks below ==="
_MARKER_START = "# === Local additions"


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


@dataclass(frozen=True)
class AclWritten:
    path: Path
    kept_lines: int  # non-blank lines of local additions carried over
    backup: Path | None  # the previous file, kept because --force overwrote blocks of its own


def split_local(text: str) -> tuple[str, str]:
    """An ACL's rendered part (through the marker line) and the local additions after it."""
    lines = text.splitlines(keepends=True)
    for n, line in enumerate(lines):
        if line.strip().startswith(_MARKER_START):
            return "".join(lines[: n + 1]), "".join(lines[n + 1 :])
    return text, ""


def unrendered_blocks(
    acl: str, template: str, identities: Mapping[str, Sequence[str]]
) -> list[str]:
    """`user` lines above the local-additions marker that no rendering of this template
    writes: blocks added by hand there, which a re-render would drop."""
    rendered = {
        parts[1]
        for parts in (line.split() for line in template.splitlines())
        if len(parts) == 2 and parts[0] == "user"
    }
    rendered.update(name for names in identities.values() for name in names)
    numbered = [re.compile(rf"{re.escape(role)}-[0-9]+") for role in identities]
    head, _ = split_local(acl)
    found = []
    for line in head.splitlines():
        parts = line.split()
        if parts[:1] != ["user"]:
            continue
        name = parts[1] if len(parts) == 2 else ""
        if name not in rendered and not any(p.fullmatch(name) for p in numbered):
            found.append(line.strip())
    return found


def write_acl(
    path: Path,
    identities: Mapping[str, Sequence[str]],
    *,
    template_dir: Path | None = None,
    force: bool = False,
) -> AclWritten:
    """Render the ACL template for these identities into `path` (atomically), keeping the
    local additions of the file it replaces.

    A `user` block above the marker that the template does not render (added before the file
    had a marker, or in the wrong place) is refused: nothing is written unless `force`, and
    then the previous file is kept as `<path>.bak`.
    """
    template_path = (template_dir or default_template_dir()) / ACL_FILE
    if not template_path.exists():
        raise TemplateError(
            f"ACL template {template_path} not found: pass --template-dir pointing at a copy "
            "of deploy/mosquitto from the source tree"
        )
    template = template_path.read_text()
    head, _ = split_local(render_acl(template, identities))
    if not head.rstrip().splitlines()[-1].startswith(_MARKER_START):  # an older template copy
        head += f"\n{LOCAL_MARKER}\n"
    previous = path.read_text() if path.exists() else ""
    local = split_local(previous)[1]
    backup = None
    foreign = unrendered_blocks(previous, template, identities)
    if foreign and not force:
        raise TemplateError(
            f"{path} has blocks this command does not render ({', '.join(foreign)}); move "
            f"them below the line {LOCAL_MARKER!r} (add it at the end if missing) so every "
            "re-render keeps them, or pass --force to overwrite (the old file is kept as "
            f"{path.name}.bak)"
        )
    rules = [w[0] for w in (line.split() for line in local.splitlines()) if w and w[0][0] != "#"]
    if rules[:1] == ["topic"]:
        # Mosquitto would read it as one more rule of the last rendered block.
        raise TemplateError(
            f"the local additions in {path} start with a `topic` line outside any `user` "
            "block; put the `user <name>` line it belongs to above it"
        )
    if foreign:
        backup = path.with_name(path.name + ".bak")
        write_public(backup, previous.encode())
    write_public(path, (head + local).encode())
    kept = sum(1 for line in local.splitlines() if line.strip())
    return AclWritten(path, kept, backup)


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
