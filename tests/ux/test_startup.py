"""Start-up: the install step runs only when the requirements changed, and the checkpoint loads at start."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.api.server import start_server

REPO = Path(__file__).resolve().parents[2]
# Stands in for .venv/bin/python: records each call instead of creating environments or installing packages.
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$@" >> "$(dirname "$0")/../calls.log"
"""


def _setup(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "scripts" / "setup_env.sh"), "requirements.txt"], cwd=folder,
                          capture_output=True, text=True, timeout=60, check=True)


def test_second_start_skips_the_install_until_requirements_change(tmp_path):
    for name in ("requirements.txt", "requirements-dev.txt"):
        shutil.copy(REPO / name, tmp_path / name)
    fake = tmp_path / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    calls = tmp_path / ".venv" / "calls.log"
    assert "Installing requirements.txt" in _setup(tmp_path).stdout
    installs = calls.read_text().count("-r requirements.txt")
    assert installs == 1
    second = _setup(tmp_path)
    assert "Installing" not in second.stdout and calls.read_text().count("-r requirements.txt") == 1
    with open(tmp_path / "requirements.txt", "a") as changed:
        changed.write("\n# a changed pin\n")
    assert "Installing requirements.txt" in _setup(tmp_path).stdout


def test_checkpoint_loads_in_the_background_at_start(tmp_path):
    started = time.monotonic()
    server = start_server(tmp_path, probe="/")
    try:
        with urllib.request.urlopen(server.url + "/", timeout=10) as page:
            assert page.status == 200
        deadline = time.monotonic() + 120
        while "INFO webui.models.manager: Loaded " not in server.log.read_text(errors="replace"):  # no Generate yet
            assert time.monotonic() < deadline, server.tail()
            assert server.process.poll() is None, server.tail()
            time.sleep(0.2)
        print(f"page and model ready {time.monotonic() - started:.1f} s after launch (pid {os.getpid()})")
    finally:
        server.stop()
