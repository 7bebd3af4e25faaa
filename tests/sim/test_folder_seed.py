"""`fleet sim` folders each draw their own device ids, kept across runs, so a second set of
virtual devices never runs a device id the first set (or the demo) is already running."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.simulator.fleet import VirtualFleet
from fleet.simulator.identity import SEED_FILE, folder_seed


def test_each_folder_draws_its_own_ids_and_keeps_them(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    seeds = folder_seed(first), folder_seed(second)
    assert seeds[0] != seeds[1] and min(seeds) > 200  # above the demo's seeds
    assert folder_seed(first) == seeds[0]  # the next run: the same devices
    ids = [
        set(VirtualFleet(50, d, base_seed=s).device_ids)
        for d, s in zip((first, second), seeds, strict=True)
    ]
    demo = set(VirtualFleet(200, tmp_path / "demo").device_ids)
    assert not ids[0] & ids[1] and not (ids[0] | ids[1]) & demo


def test_a_folder_from_before_keeps_the_ids_its_devices_have(tmp_path: Path) -> None:
    (tmp_path / "cs-02aabbccddee").mkdir()
    assert folder_seed(tmp_path) == 1
    assert (tmp_path / SEED_FILE).read_text() == "1\n"


def test_a_damaged_seed_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / SEED_FILE).write_text("lots\n")
    with pytest.raises(ValueError, match="delete it to draw a new one"):
        folder_seed(tmp_path)
