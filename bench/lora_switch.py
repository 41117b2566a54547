"""LoRA merge benchmark on a full-size SD1.5-shaped UNet + CLIP-L (random, CPU fp32): ours vs diffusers, cost model."""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import torch
import transformers
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from safetensors.torch import save_file

from bench.common import machine_summary
from webui.conditioning.tokenizer import load_clip_tokenizer
from webui.networks import LoraPatcher, ModelNames, read_lora

DTYPE = torch.float32


def build_models(dtype: torch.dtype) -> dict[str, torch.nn.Module]:
    """SD1.5-shaped UNet and CLIP-L text encoder, allocated directly and filled with seeded N(0, 0.02)."""
    with torch.device("meta"):
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)
        text = transformers.CLIPTextModel(transformers.CLIPTextConfig(
            hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
            max_position_embeddings=77, vocab_size=49408))
    models = {"unet": unet, "text_encoder": text}
    generator = torch.Generator().manual_seed(1)
    for name, model in models.items():
        model.to_empty(device="cpu")
        with torch.no_grad():
            for param in model.parameters():
                param.normal_(0.0, 0.02, generator=generator)
        models[name] = model.to(dtype).eval().requires_grad_(False)
    return models


def lora_layers(names: ModelNames) -> list[tuple[str, str]]:
    """kohya's default targets: every Linear/1x1 conv inside the UNet transformers, CLIP attention and MLP."""
    chosen = []
    for (target, name), module in names.modules.items():
        if not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            continue
        if (target == "unet" and "attentions" in name) or (target != "unet" and ("self_attn" in name or "mlp" in name)):
            chosen.append((target, name))
    return chosen


def kohya_file(names: ModelNames, layers: list[tuple[str, str]], path: Path, rank: int, seed: int) -> Path:
    """A kohya LoRA file (fp16 factors, alpha = rank/2, as trainers usually save them) for `layers`."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for target, name in layers:
        weight = names.modules[(target, name)].weight
        base = names.kohya_name(target, name)
        extra = (1, 1) if weight.dim() == 4 else ()
        tensors[f"{base}.lora_down.weight"] = (torch.randn(rank, weight.shape[1], *extra, generator=generator)
                                               * 0.01).half()
        tensors[f"{base}.lora_up.weight"] = (torch.randn(weight.shape[0], rank, *extra, generator=generator)
                                             * 0.01).half()
        tensors[f"{base}.alpha"] = torch.tensor(rank / 2, dtype=torch.float16)
    save_file(tensors, str(path))
    return path


def clock(fn) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def clock_cpu(fn) -> tuple[float, float, object]:
    """(wall s, this process's CPU s, value); CPU time is less disturbed by other users of a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, value


def machine_rates(ranks: tuple[int, ...], cpu: bool = False) -> dict[str, float]:
    """The primitives a merge is made of, measured here (best of 3), in seconds per fp32 element:
    copy into memory touched before, copy into fresh memory (first-touch page faults), and an in-place
    rank-r matmul-add `W.addmm_(up, down)` on a 1280x5120 layer (SD1.5's largest ff shape).
    `cpu`: this process's CPU seconds instead of wall seconds (steadier when others share the machine)."""
    def best(fn) -> float:
        return min(clock_cpu(fn)[1 if cpu else 0] for _ in range(3))

    elements = 256 * 2**20 // 4
    source = torch.randn(elements)
    warm = torch.empty_like(source)
    warm.copy_(source)
    rates = {"copy": best(partial(warm.copy_, source)) / elements}
    rates["fresh copy"] = best(source.clone) / elements
    weight = torch.randn(1280, 5120)
    for rank in ranks:
        up, down = torch.randn(1280, rank), torch.randn(rank, 5120)
        rates[f"addmm r{rank}"] = (
            min(clock(lambda up=up, down=down: weight.addmm_(up, down))[0] for _ in range(3)) / weight.numel()
        )
    return rates


def diffusers_pipe(models: dict[str, torch.nn.Module]) -> StableDiffusionPipeline:
    vae = AutoencoderKL(block_out_channels=(32,), down_block_types=("DownEncoderBlock2D",),
                        up_block_types=("UpDecoderBlock2D",), norm_num_groups=32)
    return StableDiffusionPipeline(vae=vae, text_encoder=models["text_encoder"], tokenizer=load_clip_tokenizer(),
                                   unet=models["unet"], scheduler=DDIMScheduler(), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


def unet_step(unet: torch.nn.Module, latent: int, dtype: torch.dtype) -> tuple[float, float]:
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, latent, latent, generator=generator).to(dtype)
    context = torch.randn(1, 77, 768, generator=generator).to(dtype)
    wall, cpu, _ = clock_cpu(lambda: unet(sample, torch.tensor([500]), encoder_hidden_states=context))
    return wall, cpu


def profile(fn, top: int) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(top)
    print("\n".join(stream.getvalue().splitlines()[:top + 12]))


def main() -> None:
    import diffusers.utils.logging
    import transformers.utils.logging

    warnings.simplefilter("ignore", FutureWarning)  # scheduler-config deprecations of the throwaway pipeline
    warnings.filterwarnings("ignore", message="Already found a `peft_config`")
    diffusers.utils.logging.set_verbosity_error()  # their load reports would bury the figures
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="alternating repeats of each apply/switch timing")
    parser.add_argument("--step-repeats", type=int, default=3, help="UNet steps per condition for (c)")
    parser.add_argument("--latent", type=int, default=32, help="latent side for the step-time check (32 = 256 px)")
    parser.add_argument("--profile", action="store_true", help="cProfile one read+apply of ours and stop")
    parser.add_argument("--skip-diffusers", action="store_true")
    parser.add_argument("--paired-steps", type=int, default=0,
                        help="only (c), steadier: this many rounds alternating a pristine and a merged copy of the "
                             "model (no apply/restore between samples)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (0: torch's default); 1 keeps CPU time free of OpenMP spin-waits "
                             "when the machine is shared")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    print(f"machine: {machine_summary()}")
    build_s, models = clock(lambda: build_models(DTYPE))
    names = ModelNames.from_models(models)
    layers = lora_layers(names)
    touched = sum(names.modules[k].weight.numel() for k in layers)
    element = torch.tensor([], dtype=DTYPE).element_size()
    print(f"built SD1.5 UNet + CLIP-L ({DTYPE}) in {build_s:.1f} s; LoRA layers {len(layers)}, "
          f"touched weights {touched / 1e6:.1f} M params = {touched * element / 2**20:.0f} MiB")
    with tempfile.TemporaryDirectory() as folder:
        files = [kohya_file(names, layers, Path(folder) / f"{tag}.safetensors", args.rank, seed)
                 for seed, tag in enumerate("ABC", start=1)]
        for path in files:
            path.read_bytes()  # warm the page cache so both sides read the files from memory
        if args.paired_steps:
            paired_steps(args, models, names, files[0])
            return
        if args.profile:
            patcher = LoraPatcher(models)
            profile(lambda: patcher.apply([(read_lora(files[0], names), 0.8, 0.8)]), 25)
            patcher.restore()
            return
        run(args, models, names, files, touched, element)


def run(args, models, names, files, touched: int, element: int) -> None:
    times: dict[str, list[tuple[float, float]]] = {}

    def record(label: str, wall: float, cpu: float) -> None:
        times.setdefault(label, []).append((wall, cpu))
        print(f"  {label:<50} {wall * 1000:9.1f} ms wall {cpu * 1000:9.1f} ms CPU")

    def timed(label: str, fn):
        wall, cpu, value = clock_cpu(fn)
        record(label, wall, cpu)
        return value

    patcher = LoraPatcher(models)
    pipe = None if args.skip_diffusers else diffusers_pipe(models)
    backup = kept = 0
    for repeat in range(args.repeats):
        order = ("ours", "diffusers") if repeat % 2 == 0 else ("diffusers", "ours")
        for side in order:
            if side == "diffusers" and pipe is not None:
                # Their first apply: read + inject PEFT layers, then fuse; their switch: unfuse, unload, load, fuse.
                load = clock_cpu(lambda: pipe.load_lora_weights(str(files[0]), adapter_name="a"))
                fuse = clock_cpu(lambda: pipe.fuse_lora(lora_scale=0.8))
                record("diffusers first apply (load+fuse)", load[0] + fuse[0], load[1] + fuse[1])
                record("  of which load_lora_weights", load[0], load[1])
                timed("diffusers switch A->B (unfuse+unload+load+fuse)",
                      lambda: (pipe.unfuse_lora(), pipe.unload_lora_weights(),
                               pipe.load_lora_weights(str(files[1]), adapter_name="b"), pipe.fuse_lora(lora_scale=0.8)))
                pipe.unfuse_lora()
                pipe.unload_lora_weights()
            elif side == "ours":
                read = clock_cpu(lambda: read_lora(files[0], names))
                lora_a = read[2]
                apply = clock_cpu(partial(patcher.apply, [(lora_a, 0.8, 0.8)]))
                assert apply[2].layers_written == len(lora_a.modules)
                record("ours first apply (read+parse+apply)", read[0] + apply[0], read[1] + apply[1])
                record("  of which read+parse", read[0], read[1])
                record("  of which apply", apply[0], apply[1])
                timed("ours same stack again", partial(patcher.apply, [(lora_a, 0.8, 0.8)]))
                lora_b, lora_c = read_lora(files[1], names), read_lora(files[2], names)
                timed("ours switch A->B", partial(patcher.apply, [(lora_b, 0.8, 0.8)]))
                timed("ours switch B->A+B+C",
                      partial(patcher.apply, [(lora_a, 0.8, 0.8), (lora_b, 0.5, 0.5), (lora_c, 0.6, 0.6)]))
                timed("ours change one weight in A+B+C",
                      partial(patcher.apply, [(lora_a, 0.8, 0.8), (lora_b, 0.4, 0.4), (lora_c, 0.6, 0.6)]))
                backup = patcher.backup_bytes()
                timed("ours restore", patcher.restore)
                # --lora-keep-backups (A1111's behaviour): the copies outlive the restore, a re-apply skips them.
                keeper = LoraPatcher(models, keep_backups=True)
                keeper.apply([(lora_a, 0.8, 0.8)])
                keeper.restore()
                timed("ours re-apply after restore, kept copies", partial(keeper.apply, [(lora_a, 0.8, 0.8)]))
                keeper.restore()
                kept = keeper.backup_bytes()
                del keeper
    step_times = step_check(args, models, names, files, pipe)
    summary(args, times, step_times, touched, element, backup, kept)


def step_check(args, models, names, files, pipe) -> dict[str, list[tuple[float, float]]]:
    """(c) UNet step time: no LoRA, ours merged, diffusers' unfused adapter; interleaved after one warm-up."""
    unet = models["unet"]
    patcher = LoraPatcher(models)
    lora = read_lora(files[0], names)
    steps: dict[str, list[tuple[float, float]]] = {"none": [], "ours merged": [], "diffusers unfused adapter": []}
    unet_step(unet, args.latent, DTYPE)

    def timed_step(label: str) -> None:
        # One untimed step first: the first step after a switch also pays for memory freshly mapped by the
        # switch (backups, PEFT layers); the figure wanted is the steady per-step cost of each condition.
        unet_step(unet, args.latent, DTYPE)
        steps[label].append(unet_step(unet, args.latent, DTYPE))

    def measure(label: str) -> None:
        if label == "ours merged":
            patcher.apply([(lora, 0.8, 0.8)])
            timed_step(label)
            patcher.restore()
        elif label == "diffusers unfused adapter":
            pipe.load_lora_weights(str(files[0]), adapter_name="s")
            pipe.set_adapters(["s"], adapter_weights=[0.8])
            timed_step(label)
            pipe.unload_lora_weights()
        else:
            timed_step(label)

    labels = [label for label in steps if pipe is not None or label != "diffusers unfused adapter"]
    for repeat in range(args.step_repeats):
        # Reverse the order every other round so a drifting background load favours no condition.
        for label in labels if repeat % 2 == 0 else labels[::-1]:
            measure(label)
    return steps


def paired_steps(args, models, names, path: Path) -> None:
    """(c) without switching noise: a merged deep copy beside the pristine model, steps alternating between them."""
    import copy

    merged = copy.deepcopy(models)
    LoraPatcher(merged).apply([(read_lora(path, names), 0.8, 0.8)])
    tiny = torch.finfo(DTYPE).tiny
    subnormal = sum(int(((w != 0) & (w.abs() < tiny)).sum()) for m in merged.values() for w in m.parameters())
    print(f"subnormal weights after the merge: {subnormal}")
    samples: dict[str, list[tuple[float, float]]] = {"none": [], "merged": []}
    unets = {"none": models["unet"], "merged": merged["unet"]}
    for unet in unets.values():
        unet_step(unet, args.latent, DTYPE)
    for round_ in range(args.paired_steps):
        for label in ("none", "merged") if round_ % 2 == 0 else ("merged", "none"):
            samples[label].append(unet_step(unets[label], args.latent, DTYPE))
    ratios = [m[1] / n[1] for m, n in zip(samples["merged"], samples["none"], strict=True)]
    for label, values in samples.items():
        print(f"{label:<7} step s wall " + ", ".join(f"{w:.2f}" for w, _ in values) +
              f"; median wall {statistics.median(w for w, _ in values):.3f}, CPU "
              f"{statistics.median(c for _, c in values):.3f}")
    print("per-round CPU ratio merged/none: " + ", ".join(f"{r:.3f}" for r in ratios) +
          f"; median {statistics.median(ratios):.3f}  (target 1.00 +/- 0.02)")


# Which primitives each cost-model row is made of (to rebuild it from CPU-time rates).
_MODEL_PARTS = {"ours first apply (read+parse+apply)": ("fresh copy", "addmm r{r}"),
                "  of which apply": ("fresh copy", "addmm r{r}"),
                "ours re-apply after restore, kept copies": ("addmm r{r}",),
                "ours switch A->B": ("copy", "addmm r{r}"), "ours switch B->A+B+C": ("copy", "addmm r{r3}"),
                "ours change one weight in A+B+C": ("copy", "addmm r{r3}"), "ours restore": ("copy",)}


def summary(args, times, steps, touched: int, element: int, backup: int, kept: int) -> None:
    wall = {label: statistics.median(w for w, _ in values) for label, values in times.items()}
    cpu = {label: statistics.median(c for _, c in values) for label, values in times.items()}
    rank = args.rank
    rates = machine_rates((rank, 3 * rank))
    weight_bytes = touched * element
    print(f"\nprimitives here, ns per fp32 element: copy {rates['copy'] * 1e9:.2f}, copy into fresh memory "
          f"{rates['fresh copy'] * 1e9:.2f}, addmm_ rank {rank} {rates[f'addmm r{rank}'] * 1e9:.2f}, "
          f"rank {3 * rank} {rates[f'addmm r{3 * rank}'] * 1e9:.2f}")
    print(f"cost model for {touched / 1e6:.0f} M touched params ({weight_bytes / 2**20:.0f} MiB), rank {rank}:")
    # What each operation must do at least, from those primitives (parse excluded; it is timed on its own):
    # first apply = clone W into fresh memory (the backup) + in-place W += s·up·down;
    # switch = copy the backup into W + the matmul-add; A+B+C = the same at rank 3r; restore = one copy.
    fresh, copy = rates["fresh copy"] * touched, rates["copy"] * touched
    gemm, gemm3 = rates[f"addmm r{rank}"] * touched, rates[f"addmm r{3 * rank}"] * touched
    cost = {"ours first apply (read+parse+apply)": (fresh + gemm, 4 * weight_bytes, 2 * rank * touched),
            "  of which apply": (fresh + gemm, 4 * weight_bytes, 2 * rank * touched),
            "ours re-apply after restore, kept copies": (gemm, 2 * weight_bytes, 2 * rank * touched),
            "ours switch A->B": (copy + gemm, 4 * weight_bytes, 2 * rank * touched),
            "ours switch B->A+B+C": (copy + gemm3, 4 * weight_bytes, 6 * rank * touched),
            "ours change one weight in A+B+C": (copy + gemm3, 4 * weight_bytes, 6 * rank * touched),
            "ours restore": (copy, 2 * weight_bytes, 0)}
    cost = {label: value for label, value in cost.items() if label in wall}
    # The same model from CPU-time primitives: other users of a shared machine stretch wall time, not CPU time.
    cpu_rates = machine_rates((rank, 3 * rank), cpu=True)
    cpu_model = {label: touched * sum(cpu_rates[part.format(r=rank, r3=3 * rank)] for part in _MODEL_PARTS[label])
                 for label in cost}
    print(f"{'step':<46} {'wall ms':>9} {'CPU ms':>9} {'model ms':>9} {'GB moved':>9} {'GFLOP':>7} {'wall/model':>10} "
          f"{'CPU/model CPU':>13}")
    for label, (predicted, moved, work) in cost.items():
        print(f"{label:<46} {wall[label] * 1000:9.1f} {cpu[label] * 1000:9.1f} {predicted * 1000:9.1f} "
              f"{moved / 1e9:9.2f} {work / 1e9:7.1f} {wall[label] / predicted:10.2f} "
              f"{cpu[label] / cpu_model[label]:13.2f}")
    print()
    for label in sorted(times):
        print(f"{label:<50} median {wall[label] * 1000:8.1f} ms wall, {cpu[label] * 1000:8.1f} ms CPU; runs " +
              ", ".join(f"{w * 1000:.0f}" for w, _ in times[label]))
    if "diffusers first apply (load+fuse)" in wall:
        def ratio(ours: str, theirs: str) -> str:
            return f"{wall[ours] / wall[theirs]:.3f} wall, {cpu[ours] / cpu[theirs]:.3f} CPU"

        first, switch = "diffusers first apply (load+fuse)", "diffusers switch A->B (unfuse+unload+load+fuse)"
        print(f"\n(a) first apply ours/diffusers load+fuse: {ratio('ours first apply (read+parse+apply)', first)}"
              "  (target <= 0.25)")
        print(f"(b) switch A->B ours/diffusers switch: {ratio('ours switch A->B', switch)}")
        print(f"    switch A->B ours/diffusers load+fuse: {ratio('ours switch A->B', first)}")
        print("    change one weight of three ours/diffusers load+fuse: "
              f"{ratio('ours change one weight in A+B+C', first)}")
    step_wall = {label: statistics.median(w for w, _ in values) for label, values in steps.items() if values}
    step_cpu = {label: statistics.median(c for _, c in values) for label, values in steps.items() if values}
    print(f"(c) UNet step {args.latent}x{args.latent} latent, median of {args.step_repeats}: " +
          ", ".join(f"{label} {step_wall[label] * 1000:.0f} ms wall / {step_cpu[label] * 1000:.0f} ms CPU"
                    for label in step_wall))
    for label in ("ours merged", "diffusers unfused adapter"):
        if label in step_wall:
            print(f"    {label}/none = {step_wall[label] / step_wall['none']:.3f} wall, "
                  f"{step_cpu[label] / step_cpu['none']:.3f} CPU" +
                  ("  (target 1.00 +/- 0.02)" if label == "ours merged" else ""))
    print(f"(d) backup bytes / touched weight bytes: {backup / weight_bytes:.3f} ({backup / 2**20:.0f} MiB)")
    apply_only = wall["  of which apply"] / cost["  of which apply"][0]
    apply_cpu = cpu["  of which apply"] / cpu_model["  of which apply"]
    print(f"(e) first apply (apply only) / cost model (copy into fresh memory + rank-{rank} matmul-add, both measured "
          f"in this run): {apply_only:.2f} wall, {apply_cpu:.2f} CPU  (target <= 1.3: "
          f"{'met' if min(apply_only, apply_cpu) <= 1.3 else 'NOT met'}); with the file read+parse: "
          f"{wall['ours first apply (read+parse+apply)'] / cost['  of which apply'][0]:.2f} wall")
    if "ours re-apply after restore, kept copies" in wall:
        print(f"(f) --lora-keep-backups: re-apply after restore "
              f"{wall['ours re-apply after restore, kept copies'] * 1000:.0f} ms against "
              f"{wall['  of which apply'] * 1000:.0f} ms for a first apply; the kept copies hold "
              f"{kept / 2**20:.0f} MiB while no LoRA is active")


if __name__ == "__main__":
    main()
