"""/standards works from an installed package (the container image installs a wheel), and a
file the standard lacks is a 404, never a 500."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fleet.api.routes import standards

ROOT = Path(__file__).resolve().parents[2]

# Run against the installed copy only: the repository must not be on the path.
SERVE_FROM_INSTALL = """
import json, sys
from fastapi import FastAPI
from fastapi.testclient import TestClient
import fleet
from fleet.api.routes import standards

app = FastAPI()
app.include_router(standards.router)
client = TestClient(app, raise_server_exceptions=False)
paths = ["/standards/", "/standards/privacy.md", "/standards/schemas/feed-senml.schema.json",
         "/standards/catalogue.json?raw=1", "/standards/nothing.md"]
print(json.dumps({"fleet": fleet.__file__,
                  "status": {p: client.get(p).status_code for p in paths}}))
"""


def test_an_installed_package_serves_the_standard(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    for name in ("fleet", "provisioning"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    site = tmp_path / "site"
    # build_py lays out exactly what a wheel holds for a pure-Python package: the packages
    # and their package data, nothing else of the repository.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import setuptools; setuptools.setup()",
            "-q",
            "build_py",
            "-d",
            site,
        ],
        cwd=source,
        check=True,
        capture_output=True,
    )
    shutil.rmtree(source)
    shipped = {
        p.relative_to(site / "fleet/feed/standard") for p in site.glob("fleet/feed/standard/**/*")
    }
    in_repo = {p.relative_to(standards.STANDARDS_DIR) for p in standards.STANDARDS_DIR.rglob("*")}
    assert shipped == in_repo

    run = subprocess.run(
        [sys.executable, "-c", SERVE_FROM_INSTALL],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        text=True,
    )
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["fleet"].startswith(str(site))
    assert answer["status"] == {
        "/standards/": 200,
        "/standards/privacy.md": 200,
        "/standards/schemas/feed-senml.schema.json": 200,
        "/standards/catalogue.json?raw=1": 200,
        "/standards/nothing.md": 404,
    }


def test_a_missing_standard_is_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(standards, "STANDARDS_DIR", tmp_path / "absent")
    app = FastAPI()
    app.include_router(standards.router)
    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/standards/").status_code == 404
    assert client.get("/standards/privacy.md").status_code == 404
