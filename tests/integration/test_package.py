"""The container image's steps, without a Docker engine: build the wheel from exactly what the
Dockerfile copies, install only it and its runtime dependencies into a fresh venv, and run that
venv's `radar-extract --help` and `radar-extract check` against the test MariaDB.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, Server
from tests.deploy.dockerfile import build_sources, stages

pytestmark = pytest.mark.integration

DEV_TOOLS = ("pytest", "moto", "duckdb", "mypy", "ruff")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    bin: Path
    seconds: dict[str, float]

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RADAR_", "PYTHON", "VIRTUAL_ENV"))
        }
        base.update(env or {})
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            env=base,
            timeout=300,
            stdin=subprocess.DEVNULL,
            cwd=self.bin.parent,
        )


def _run(*cmd: str | Path) -> None:
    proc = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("package")
    # Stage 1 of the Dockerfile: exactly the files its build stage copies, then one wheel.
    src = tmp / "src"
    src.mkdir()
    for name in build_sources(stages()[0]):
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy2(ROOT / name, src / name)
    seconds: dict[str, float] = {}
    start = time.monotonic()
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--wheel-dir",
        tmp / "wheels",
        src,
    )
    seconds["wheel"] = time.monotonic() - start
    (wheel,) = (tmp / "wheels").glob("radar_extract-*.whl")
    # Stage 2: a fresh venv with the wheel and its runtime dependencies only (from pip's cache).
    venv = tmp / "venv"
    start = time.monotonic()
    _run(sys.executable, "-m", "venv", venv)
    _run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel)
    seconds["install"] = time.monotonic() - start
    return Installed(wheel, venv / "bin", seconds)


def test_wheel_holds_only_the_package(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"extractor", "radar_extract-0.1.0.dist-info"}
    assert not [
        n for n in names if "test" in n.split("/")[-1] or n.startswith(("tests/", "bench/"))
    ]
    assert "extractor/cli.py" in names


def test_installed_venv_has_no_dev_tools(installed: Installed) -> None:
    proc = installed.run(
        "python",
        "-c",
        f"import importlib.util as u, sys; print([m for m in {DEV_TOOLS!r} if u.find_spec(m)])",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    # Every module of the package imports with the runtime dependencies alone.
    proc = installed.run(
        "python",
        "-c",
        "import importlib, pkgutil, extractor; "
        "names = [m.name for m in pkgutil.walk_packages(extractor.__path__, "
        "'extractor.') if not m.name.endswith('__main__')]; "
        "[importlib.import_module(n) for n in names]; "
        "print(len(names), extractor.__file__)",
    )
    assert proc.returncode == 0, proc.stderr
    count, location = proc.stdout.split()
    assert int(count) >= 20
    assert location.startswith(str(installed.bin.parent))  # the wheel, not the source tree


def test_help(installed: Installed) -> None:
    proc = installed.run("radar-extract", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage: radar-extract" in proc.stdout
    for command in ("extract", "check", "tables"):
        assert f"  {command} " in proc.stdout


def test_check_against_the_test_server(
    installed: Installed, server: Server, make_database: Callable[..., str], tmp_path: Path
) -> None:
    database = make_database(
        "CREATE TABLE store (id INT PRIMARY KEY, name VARCHAR(20))",
        "INSERT INTO store VALUES (1, 'one'), (2, 'two')",
    )
    dest = tmp_path / "dest"
    proc = installed.run(
        "radar-extract",
        "check",
        env={"RADAR_MYSQL_URL": server.url(database), "RADAR_DEST": str(dest)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert not [line for line in lines if line.startswith("FAIL")]
    by_name = {line[5:].split(":", 1)[0]: line for line in lines}
    assert by_name["mysql"].startswith("ok   mysql: ")
    assert database in by_name["mysql"]
    assert by_name["tables"] == "ok   tables: 1 base tables readable"
    reader = "connectorx via TLS proxy" if server.tls else "connectorx"  # MySQL: TLS
    assert by_name["reader"].startswith(f"ok   reader: {reader} read a row")
    assert by_name["destination"].startswith(f"ok   destination: {dest} writable")
    assert not [p for p in dest.rglob("*") if p.is_file()]  # the write probe is deleted again
