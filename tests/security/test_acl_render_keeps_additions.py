"""`python -m fleet.identity acl` re-renders the service blocks and keeps the site's own.

Feed consumers are granted by hand-written blocks; adding ingest workers re-renders the ACL,
and must neither drop those blocks nor overwrite ones it cannot place without saying so.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleet.identity.cli import app
from fleet.identity.mosquitto import ACL_FILE, LOCAL_MARKER, default_template_dir

runner = CliRunner()

CONSUMER = """
user fleet-feed-hackney
topic read v1.1/#
topic read cs/v1/feed/public/#
topic read cs/v1/feed/full/hackney/#
topic deny cs/v1/d/#
"""


def render(acl: Path, *extra: str, workers: int = 1) -> tuple[int, str]:
    result = runner.invoke(
        app, ["acl", "--out", str(acl), "--ingest-workers", str(workers), *extra]
    )
    return result.exit_code, " ".join(result.output.split())


def users(acl: Path) -> list[str]:
    return [line.split()[1] for line in acl.read_text().splitlines() if line.startswith("user ")]


def test_the_template_ends_with_the_local_additions_line() -> None:
    template = (default_template_dir() / ACL_FILE).read_text()
    assert template.rstrip().splitlines()[-1] == LOCAL_MARKER


def test_consumer_blocks_below_the_marker_survive_re_rendering(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    assert render(acl)[0] == 0
    with acl.open("a") as fh:  # as the README says: append the consumer's block
        fh.write(CONSUMER)

    code, output = render(acl, "--api-replicas", "2", workers=4)
    assert code == 0, output
    assert "Kept the local additions (5 lines)" in output
    assert acl.read_text().endswith(LOCAL_MARKER + "\n" + CONSUMER)
    assert {"fleet-ingest-3", "fleet-api-1", "fleet-feed-hackney"} <= set(users(acl))
    assert users(acl).count("fleet-feed-hackney") == 1

    # Fewer workers: the dropped identities go, the consumer stays; rendering is repeatable.
    assert render(acl, workers=2)[0] == 0
    once = acl.read_text()
    assert "fleet-ingest-3" not in users(acl) and "fleet-feed-hackney" in users(acl)
    assert render(acl, workers=2)[0] == 0
    assert acl.read_text() == once
    assert not (tmp_path / "acl.bak").exists()


def test_a_file_without_the_marker_is_not_silently_overwritten(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    assert render(acl, workers=4)[0] == 0
    # A file rendered before the marker existed, with a consumer appended to it.
    old = acl.read_text().replace(LOCAL_MARKER + "\n", "") + CONSUMER
    acl.write_text(old)

    code, output = render(acl, workers=2)
    assert code == 2
    assert "user fleet-feed-hackney" in output and "--force" in output
    assert acl.read_text() == old

    code, output = render(acl, "--force", workers=2)
    assert code == 0, output
    assert (tmp_path / "acl.bak").read_text() == old
    assert str(tmp_path / "acl.bak") in output
    assert "fleet-feed-hackney" not in users(acl)
    assert acl.read_text().rstrip().endswith(LOCAL_MARKER)


def test_an_older_render_without_hand_added_blocks_is_replaced(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    assert render(acl, workers=4)[0] == 0
    acl.write_text(acl.read_text().replace(LOCAL_MARKER + "\n", ""))
    code, output = render(acl, workers=2)  # fleet-ingest-2/3 were rendered: not refused
    assert code == 0, output
    assert acl.read_text().rstrip().endswith(LOCAL_MARKER)
    assert not (tmp_path / "acl.bak").exists()


def test_a_block_added_above_the_marker_is_refused(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    assert render(acl)[0] == 0
    text = acl.read_text().replace(LOCAL_MARKER, CONSUMER.strip() + "\n\n" + LOCAL_MARKER)
    acl.write_text(text)
    code, output = render(acl)
    assert code == 2 and "user fleet-feed-hackney" in output
    assert acl.read_text() == text


@pytest.mark.parametrize("addition", ["topic read cs/v1/feed/#\n", "# note\n\ntopic read #\n"])
def test_local_additions_must_start_with_a_user_line(tmp_path: Path, addition: str) -> None:
    # Mosquitto would add a bare `topic` line to the rights of the block above the marker.
    acl = tmp_path / "acl"
    assert render(acl)[0] == 0
    with acl.open("a") as fh:
        fh.write(addition)
    before = acl.read_text()
    code, output = render(acl, workers=2)
    assert code == 2 and "outside any `user` block" in output
    assert acl.read_text() == before
