"""device-report.md from the device check's figures: tables with each target beside the measured ratio."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from webui.files import atomic_write_text


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.1f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "—"
    return f"{value:.3f} ({'met' if value <= limit else 'NOT met'}, target ≤ {limit})"


def _problem(part: Any) -> str | None:
    if not isinstance(part, dict):
        return None
    if "skipped" in part:
        return f"skipped: {part['skipped']}"
    if "error" in part:
        return f"failed: {part['error']}"
    return None


def _txt2img(lines: list[str], figures: dict) -> None:
    lines += ["| batch | ours ms/step | ours it/s | diffusers ms/step | diffusers it/s | ours/diffusers | "
              "peak VRAM ours / diffusers MiB |", "|---|---|---|---|---|---|---|"]
    for row in figures.values():
        ours, theirs = row.get("ours", {}), row.get("diffusers", {})
        lines.append(f"| {row['batch']} | {_ms(ours.get('per_step_s'))} | {_num(ours.get('it_s'))} | "
                     f"{_ms(theirs.get('per_step_s'))} | {_num(theirs.get('it_s'))} | "
                     f"{_verdict(row.get('ratio_per_step'), 1.05)} | "
                     f"{_num(ours.get('peak_vram_mib'), 0)} / {_num(theirs.get('peak_vram_mib'), 0)} |")


def _lora(lines: list[str], lora: dict) -> None:
    lines += [f"rank {lora['rank']}, {lora['layers']} layers, {lora['touched_mib']:.0f} MiB of touched weights; "
              f"kept pristine copies (--lora-keep-backups) hold {lora['kept_backup_mib']:.0f} MiB while no LoRA "
              "is active.", "",
              "| step | ours ms | bandwidth floor ms | × floor | × diffusers load+fuse |", "|---|---|---|---|---|"]
    versus = lora.get("vs_diffusers_load_fuse", {})
    for label, floor in lora["floor_s"].items():
        limit_floor = 2.0 if "switch" in label else None
        floor_text = _verdict(lora["vs_floor"][label], limit_floor) if limit_floor else _num(lora["vs_floor"][label])
        theirs = versus.get(label)
        theirs_text = _verdict(theirs, 0.25) if theirs is not None and "switch" in label else _num(theirs, 3)
        lines.append(f"| {label} | {_ms(lora['seconds'][label])} | {_ms(floor)} | {floor_text} | {theirs_text} |")
    lines.append(f"| ours parse (file → factors) | {_ms(lora['seconds'].get('ours parse'))} | | | |")
    if "diffusers load+fuse" in lora["seconds"]:
        lines.append(f"| diffusers load+fuse | {_ms(lora['seconds']['diffusers load+fuse'])} | | | |")


def _fast_paths(lines: list[str], part: dict) -> None:
    lines += [f"{part['shape']} at {part['size']}², {part['steps']} steps, batch 1, ours only.", "",
              "| variant | ms/step | it/s | × default | peak VRAM MiB | weights |", "|---|---|---|---|---|---|"]
    for label, row in part.items():
        if not isinstance(row, dict) or label == "--compile":
            continue
        problem = _problem(row)
        if problem:
            lines.append(f"| {label} | {problem} | | | | |")
            continue
        lines.append(f"| {label} | {_ms(row['per_step_s'])} | {_num(row['it_s'])} | {_num(row.get('vs_default'), 3)} "
                     f"| {_num(row['peak_vram_mib'], 0)} | {row['dtype']}, offload {row['offload']} |")
    compiled = part.get("--compile", {})
    problem = _problem(compiled)
    lines.append("")
    if problem:
        lines.append(f"--compile: {problem}")
        return
    steady = compiled.get("vs_default")
    recompiled = "RECOMPILED" if compiled["recompiled_after_lora_switch"] else "no recompilation"
    lines += [f"--compile ({compiled['backend']}): first call {compiled['first_call_s']:.1f} s, steady "
              f"{_ms(compiled['per_step_s'])} ms/step ({_num(steady, 3)} × default: "
              f"{'faster' if steady is not None and steady < 1 else 'NOT faster'}), "
              f"frames compiled {compiled['frames_before_lora']} before and {compiled['frames_after_lora_switches']} "
              f"after two LoRA switches ({recompiled}), {_ms(compiled['per_step_after_switches_s'])} ms/step "
              "after them."]


def write_report(figures: dict, path: Path) -> None:
    env = figures["environment"]
    lines = ["# Device check", "",
             f"`{figures['command']}`{' (quick rehearsal: tiny shapes, not figures)' if figures['quick'] else ''}; "
             f"{figures.get('total_s', '?')} s in all.", "",
             f"- device: {env.get('gpu', env['device'])}" + (f", CUDA {env['cuda']}, {env['vram_gib']:.0f} GiB"
                                                           if "gpu" in env else ""),
             f"- python {env['python']}, torch {env['torch']}, diffusers {env['diffusers']}, "
             f"transformers {env['transformers']}, commit {env.get('commit')}",
             f"- host: {env['machine']}",
             f"- copy bandwidth (read + write, fp16 `copy_`): {figures['copy_bandwidth_gb_s']:.1f} GB/s", ""]
    tests = figures.get("gpu_tests")
    if tests is not None:
        lines += ["## pytest -m gpu", "", _problem(tests) or
                  f"exit {tests['returncode']}: {tests['summary']} ({tests['seconds']} s; log {tests['log']})", ""]
    for key, part in figures.items():
        if not key.startswith("family "):
            continue
        problem = _problem(part)
        title = part.get("shape", key) if isinstance(part, dict) else key
        lines += [f"## {title}", ""]
        if problem:
            lines += [problem, ""]
            continue
        lines += [f"Random weights ({part['unet_params_m']:.0f} M UNet parameters) built on the device in "
                  f"{part['build_s']:.1f} s. txt2img, Euler, CFG 7, per-step = median of steps 2..n "
                  "(same UNet object for both sides; ours with the default flags, i.e. `--precision autocast` on "
                  "a GPU, diffusers in plain fp16; the fast-path table gives `--precision half`, the like-for-like "
                  "setting):",
                  ""]
        _txt2img(lines, part["txt2img"])
        lines += ["", "LoRA:", ""]
        _lora(lines, part["lora"])
        vae = part.get("vae_decode")
        if vae:
            lines += ["", f"VAE decode of one {vae['size']}² image: whole {_ms(vae['whole']['seconds'])} ms, peak "
                      f"{_num(vae['whole']['peak_vram_mib'], 0)} MiB; tiled {_ms(vae['tiled']['seconds'])} ms, peak "
                      f"{_num(vae['tiled']['peak_vram_mib'], 0)} MiB."]
        lines.append("")
    fast = figures.get("fast_paths")
    if fast is not None:
        lines += ["## Fast paths", ""]
        problem = _problem(fast)
        if problem:
            lines.append(problem)
        else:
            _fast_paths(lines, fast)
        lines.append("")
    train = figures.get("train_step")
    if train is not None:
        lines += ["## Training step", "", _problem(train) or
                  f"exit {train['returncode']}: {train['summary']} ({train['seconds']} s; log {train['log']})", ""]
    atomic_write_text(path, "\n".join(lines) + "\n")
