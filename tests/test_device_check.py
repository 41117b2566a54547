"""The prepared device check: its CPU rehearsal writes a complete report + JSON, and its wheel install finds
missing packages and resolves them from a local wheel folder without the network."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _fake_wheel(folder: Path, name: str = "fakepkg_q9", version: str = "1.0") -> Path:
    """A minimal valid pure-Python wheel, so pip can resolve it from a --find-links folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "")
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                          "Tag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return path


def _install(tmp_path: Path, lines: str, wheels: Path, dry_run: bool = True) -> subprocess.CompletedProcess:
    listing = tmp_path / "wheels.txt"
    listing.write_text(lines, encoding="utf-8")
    env = {**os.environ, "WHEEL_LIST": str(listing), "PIP_NO_INDEX": "1"}
    if dry_run:
        env["INSTALL_DRY_RUN"] = "1"
    return subprocess.run(["bash", str(REPO / "bench/device/install_wheels.sh"), sys.executable, str(wheels)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_wheel_install_picks_only_missing_packages_and_resolves_them_offline(tmp_path) -> None:
    wheels = tmp_path / "whl"
    _fake_wheel(wheels)
    run = _install(tmp_path, "# comment\njson json==0\nfakepkg_q9 fakepkg_q9==1.0\n", wheels)
    assert run.returncode == 0, run.stderr
    assert "present: json" in run.stdout
    assert "missing: fakepkg_q9 -> fakepkg_q9==1.0" in run.stdout
    assert "--no-index" in run.stdout and "--no-deps" in run.stdout and "json==0" not in run.stdout
    assert "Would install fakepkg_q9-1.0" in run.stdout  # pip found it in the folder, installed nothing
    with pytest.raises(ImportError):
        __import__("fakepkg_q9")


def test_wheel_install_reports_a_missing_wheel_folder_and_a_complete_image(tmp_path) -> None:
    absent = _install(tmp_path, "fakepkg_q9 fakepkg_q9==1.0\n", tmp_path / "no-such-folder")
    assert absent.returncode == 1 and "fetch_wheels.sh" in absent.stderr
    complete = _install(tmp_path, "json json==0\nos os==0\n", tmp_path / "no-such-folder")
    assert complete.returncode == 0 and "nothing to install" in complete.stdout
    wrong = _install(tmp_path, "fakepkg_q9 fakepkg_q9==2.0\n", _fake_wheel(tmp_path / "w").parent)
    assert wrong.returncode != 0  # a wheel of another version is not silently taken


@pytest.mark.slow
def test_quick_cpu_rehearsal_writes_every_section_of_the_report(tmp_path) -> None:
    out = tmp_path / "report"
    run = subprocess.run(["bash", str(REPO / "bench/device/run.sh"), "--device", "cpu", "--quick",
                          "--budget-s", "1200", str(out)], capture_output=True, text=True, cwd=REPO, timeout=1500)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figures = json.loads((out / "device-figures.json").read_text(encoding="utf-8"))
    report = (out / "device-report.md").read_text(encoding="utf-8")
    problems = {key: value for key, value in figures.items()
                if isinstance(value, dict) and ("error" in value or "skipped" in value) and key != "train_step"}
    assert not problems, problems
    tests = figures["gpu_tests"]
    assert tests["returncode"] == 0 and "skipped" in tests["summary"]  # every gpu test skips, with a reason
    assert "needs a CUDA device" in (out / "gpu-tests.log").read_text(encoding="utf-8")
    for family in ("sd1", "sdxl"):
        part = figures[f"family {family}"]
        for row in part["txt2img"].values():
            assert row["ours"]["per_step_s"] > 0 and row["diffusers"]["per_step_s"] > 0
            assert row["ratio_per_step"] > 0
        lora = part["lora"]
        assert set(lora["floor_s"]) <= set(lora["seconds"]) and lora["touched_mib"] > 0
        assert lora["kept_backup_mib"] == pytest.approx(lora["touched_mib"])
        assert lora["seconds"]["diffusers load+fuse"] > 0
        assert part["vae_decode"]["whole"]["seconds"] > 0 and part["vae_decode"]["tiled"]["seconds"] > 0
    fast = figures["fast_paths"]
    assert all(fast[label]["per_step_s"] > 0 for label in ("default (SDPA)", "--opt-channelslast"))
    assert fast["--compile"]["frames_before_lora"] >= 1 and not fast["--compile"]["recompiled_after_lora_switch"]
    for heading in ("## pytest -m gpu", "## SD1.5 (tiny)", "## SDXL (tiny)", "## Fast paths", "## Training step"):
        assert heading in report
    assert "ours switch A->B" in report and "--compile (eager)" in report
