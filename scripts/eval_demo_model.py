"""Measures the demo checkpoint through the real txt2img path: 48 fixed prompts x 2 seeds, analysed and tabulated."""
from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from scripts.demo_shapes import IMAGE_SIZE, caption, eval_prompts
from tests.demo.analyser import analyse, matches
from webui.models.device import device_config
from webui.paths import Folders
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.runtime import Runtime, build_runtime
from webui.processing.txt2img import txt2img

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKPOINT = ROOT / "models" / "Stable-diffusion" / "demo-shapes.safetensors"
SEEDS = (1, 2)
THRESHOLDS = {"foreground": 0.90, "background": 0.90, "shape": 0.75}


def demo_runtime(checkpoint: Path, scratch: Path) -> Runtime:
    """A runtime whose checkpoint folder is the demo's own folder, exactly as the app builds it."""
    folders = Folders(checkpoints=checkpoint.parent, vae=scratch / "VAE", lora=(scratch / "Lora",),
                      embeddings=scratch / "embeddings", outputs=scratch / "outputs", data=scratch)
    return build_runtime(folders, device_config(device="cpu"), hashing=False)


def evaluate(checkpoint: Path, seeds: tuple[int, ...] = SEEDS, steps: int = 20, cfg: float = 7.0,
             sampler: str = "Euler a", save_dir: Path | None = None) -> list[dict[str, object]]:
    """One row per (prompt, seed): the words asked for, what the analyser saw, and whether each part matches."""
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as scratch:
        runtime = demo_runtime(checkpoint, Path(scratch))
        for colour, shape, background in eval_prompts():
            prompt = caption(colour, shape, background)
            for seed in seeds:
                request = make_request(Txt2ImgRequest, {
                    "prompt": prompt, "negative_prompt": "", "steps": steps, "sampler_name": sampler,
                    "cfg_scale": cfg, "width": IMAGE_SIZE, "height": IMAGE_SIZE, "seed": seed,
                    "checkpoint": checkpoint.stem, "save_images": False, "save_grid": False})
                image = txt2img(request, runtime).images[0]
                if save_dir is not None:
                    save_dir.mkdir(parents=True, exist_ok=True)
                    image.save(save_dir / f"{colour}-{shape}-{background}-{seed}.png")
                seen = analyse(image)
                fg_ok, bg_ok, shape_ok = matches(seen, colour, shape, background)
                rows.append({"colour": colour, "shape": shape, "background": background, "seed": seed,
                             "seen_colour": seen.foreground, "seen_shape": seen.shape,
                             "seen_background": seen.background, "fill": seen.fill_ratio,
                             "foreground": fg_ok, "background_ok": bg_ok, "shape_ok": shape_ok})
    return rows


def _mark(ok: object) -> str:
    return "ok" if ok else "--"


def format_table(rows: list[dict[str, object]]) -> str:
    """Per-image lines, per-word breakdowns and the three totals with their thresholds."""
    lines = [f"{'prompt':<40} {'seed':>4}  {'colour':<14} {'background':<14} {'shape':<14} fill"]
    for row in rows:
        prompt = caption(str(row["colour"]), str(row["shape"]), str(row["background"]))
        lines.append(f"{prompt:<40} {row['seed']:>4}  {_mark(row['foreground'])} {row['seen_colour']:<11} "
                     f"{_mark(row['background_ok'])} {row['seen_background']:<11} "
                     f"{_mark(row['shape_ok'])} {row['seen_shape']:<11} {float(row['fill']):.2f}")
    for key, label in (("colour", "by colour"), ("shape", "by shape"), ("background", "by background")):
        groups: dict[str, list[dict[str, object]]] = defaultdict(list)
        for row in rows:
            groups[str(row[key])].append(row)
        lines.append(f"\n{label}: " + "  ".join(
            f"{name} fg {sum(bool(r['foreground']) for r in g)}/{len(g)} bg {sum(bool(r['background_ok']) for r in g)}"
            f"/{len(g)} shape {sum(bool(r['shape_ok']) for r in g)}/{len(g)}" for name, g in groups.items()))
    totals = summary(rows)
    lines.append("\n| measure | correct | rate | required |\n|---|---|---|---|")
    for name, column in (("foreground colour", "foreground"), ("background colour", "background_ok"),
                         ("shape", "shape_ok")):
        correct = sum(bool(r[column]) for r in rows)
        threshold = THRESHOLDS[name.split()[0]]
        lines.append(f"| {name} | {correct}/{len(rows)} | {totals[name.split()[0]]:.1%} | >= {threshold:.0%} |")
    return "\n".join(lines)


def summary(rows: list[dict[str, object]]) -> dict[str, float]:
    """Rates of correct foreground colour, background colour and shape."""
    n = max(1, len(rows))
    return {"foreground": sum(bool(r["foreground"]) for r in rows) / n,
            "background": sum(bool(r["background_ok"]) for r in rows) / n,
            "shape": sum(bool(r["shape_ok"]) for r in rows) / n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=7.0)
    parser.add_argument("--sampler", default="Euler a")
    parser.add_argument("--save-dir", type=Path, default=None, help="also write every image here")
    args = parser.parse_args(argv)
    started = time.time()
    rows = evaluate(args.checkpoint.resolve(), tuple(args.seeds), args.steps, args.cfg, args.sampler, args.save_dir)
    print(format_table(rows))
    totals = summary(rows)
    passed = all(totals[key] >= THRESHOLDS[key] for key in THRESHOLDS)
    print(f"\n{len(rows)} images ({len(rows) // len(args.seeds)} prompts x {len(args.seeds)} seeds), "
          f"{args.sampler}, {args.steps} steps, CFG {args.cfg}, {IMAGE_SIZE}x{IMAGE_SIZE}, "
          f"{time.time() - started:.0f} s: {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
