"""Missing required options: all of them named in one run, as a usage error (exit 2)."""

from __future__ import annotations

from typing import Annotated

import pytest
import typer

from provisioning.cli import AllMissingAtOnce, app, main
from provisioning.errors import ExitCode, UsageError
from tests.provisioning.conftest import said


def _required() -> list[tuple[str, list[str]]]:
    """Each command with required parameters, and how the usage line names them."""
    group = typer.main.get_command(app)
    found = []
    for name, command in sorted(group.commands.items()):  # type: ignore[attr-defined]
        names = [
            next((o for o in p.opts if o.startswith("--")), p.opts[0])
            if p.param_type_name == "option"
            else (p.name or "").upper()
            for p in command.params
            if p.required
        ]
        if names:
            found.append((name, names))
    return found


def test_the_commands_with_several_required_options_are_covered() -> None:
    several = {name for name, names in _required() if len(names) > 1}
    assert {"enroll", "device"} <= several


@pytest.mark.parametrize(("command", "names"), _required())
def test_a_run_without_arguments_names_everything_required(
    command: str, names: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command]) == ExitCode.USAGE
    text = said(capsys)
    first_line = text.split(" fix: ")[0]
    assert first_line.startswith("error: missing ")
    for name in names:
        assert name in first_line
    assert f"`provision {command} --help`" in text and "unexpected error" not in text


def test_enroll_names_its_three_missing_options_on_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["enroll", "--token", "fst_x", "--device-id", "cs-3c71bf0a12f4"]) == 2
    text = said(capsys)
    assert "error: missing options: --borough, --property, --room fix: add --borough, " in text
    assert "--property and --room to the command" in text


def test_only_the_options_still_missing_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["device", "--room", "bathroom", "--skip-flash"]) == ExitCode.USAGE
    text = said(capsys)
    assert "error: missing options: --borough, --property fix:" in text
    assert "--room" not in text.split(" fix: ")[0]


def test_device_names_a_missing_image_with_the_rest(capsys: pytest.CaptureFixture[str]) -> None:
    """--image is needed only without --skip-flash: checked when the command runs, but named
    with the other missing options so one correction does."""
    assert main(["device", "--room", "bathroom"]) == ExitCode.USAGE
    text = said(capsys)
    assert "error: missing options: --borough, --property, --image (or --skip-flash) fix:" in text
    assert main(["device", "--room", "bathroom", "--image", "x.bin"]) == ExitCode.USAGE
    assert "--image" not in said(capsys).split(" fix: ")[0]


def test_help_still_works_without_the_required_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["enroll", "--help"]) == ExitCode.OK
    out = capsys.readouterr()
    assert "--borough" in out.out and "missing" not in out.err


def test_other_bad_values_keep_their_own_message(capsys: pytest.CaptureFixture[str]) -> None:
    # A value out of range is still refused by its own check, not reported as missing.
    assert main(["flash", "--image", "x.bin", "--baud", "0"]) == ExitCode.USAGE
    text = said(capsys)
    assert "'--baud'" in text and "missing" not in text


def _with_env_option() -> typer.Typer:
    demo = typer.Typer()

    @demo.command(cls=AllMissingAtOnce)
    def run(
        site: Annotated[str, typer.Option("--site", envvar="DEMO_SITE")],
        room: Annotated[str, typer.Option("--room")],
    ) -> None:
        typer.echo(f"{site}/{room}")

    return demo


def test_an_option_set_by_its_env_var_counts_as_given(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    command = typer.main.get_command(_with_env_option())
    monkeypatch.delenv("DEMO_SITE", raising=False)
    with pytest.raises(UsageError, match=r"^missing options: --site, --room$"):
        command.main(args=[], prog_name="demo", standalone_mode=False)

    monkeypatch.setenv("DEMO_SITE", "hackney")
    with pytest.raises(UsageError, match=r"^missing option: --room$"):
        command.main(args=[], prog_name="demo", standalone_mode=False)
    command.main(args=["--room", "bathroom"], prog_name="demo", standalone_mode=False)
    assert capsys.readouterr().out == "hackney/bathroom\n"
