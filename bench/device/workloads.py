"""Device benchmark workloads: random SD1.5/SDXL-shaped models built on the device, txt2img ours vs diffusers,
LoRA apply/switch/restore against diffusers and a bandwidth floor, and the fast-path variants."""
from __future__ import annotations

import gc
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from bench.lora_switch import kohya_file, lora_layers
from bench.txt2img_vs_diffusers import CFG_SCALE, run_diffusers, run_ours
from tests.helpers.components import build_models
from tests.helpers.tiny_models import tiny_architecture
from webui.models.architectures import Architecture, load_architecture
from webui.models.device import DeviceConfig
from webui.models.loader import LoadedComponents, TextEncoder, place
from webui.networks import LoraPatcher, ModelNames, read_lora
from webui.paths import Folders
from webui.processing.runtime import Runtime, build_runtime


@dataclass(frozen=True)
class Shape:
    """One model family at one size: which architecture, image side, steps, batches and LoRA rank."""

    label: str
    arch_name: str
    tiny: bool
    size: int
    steps: int
    batches: tuple[int, ...]
    rank: int
    repeats: int

    def architecture(self) -> Architecture:
        return tiny_architecture(self.arch_name) if self.tiny else load_architecture(self.arch_name)


def shapes(quick: bool) -> list[Shape]:
    if quick:
        return [Shape("SD1.5 (tiny)", "sd1", True, 64, 3, (1, 2), 4, 1),
                Shape("SDXL (tiny)", "sdxl", True, 64, 3, (1, 2), 4, 1)]
    return [Shape("SD1.5", "sd1", False, 512, 20, (1, 4), 32, 2),
            Shape("SDXL", "sdxl", False, 1024, 20, (1, 4), 32, 2)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn: Callable[[], Any]) -> tuple[float, Any]:
    sync(device)
    start = time.perf_counter()
    value = fn()
    sync(device)
    return time.perf_counter() - start, value


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def peak_vram_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_vram_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


# --- models and runtimes ------------------------------------------------------------------------------------------

def build_components(shape: Shape, config: DeviceConfig, seed: int = 0) -> LoadedComponents:
    """Random weights (the libraries' own init) allocated straight on the compute device, then placed as a load
    would: dtype, storage device (the CPU under --medvram/--lowvram) and the fast paths."""
    arch = shape.architecture()
    with torch.device(config.device):
        models: dict[str, Any] = build_models(arch, seed=seed)
    encoders = [TextEncoder(spec.slot, spec.kind, models[spec.slot]) for spec in arch.text_encoders]
    components = LoadedComponents(arch, models["unet"], models["vae"], encoders)
    place(components, config)
    return components


def runtime_with(components: LoadedComponents, config: DeviceConfig, workdir: Path, name: str) -> Runtime:
    """A runtime whose loaded model is `components`, registered under a placeholder checkpoint file `name`."""
    checkpoints = workdir / "Stable-diffusion"
    checkpoints.mkdir(parents=True, exist_ok=True)
    (checkpoints / f"{name}.safetensors").write_bytes(b"")  # never read: the model is installed, not loaded
    folders = Folders(checkpoints=checkpoints, vae=workdir / "VAE", lora=(workdir / "Lora",),
                      embeddings=workdir / "embeddings", outputs=workdir / "outputs", data=workdir)
    runtime = build_runtime(folders, config, hashing=False)
    runtime.models.install(runtime.registry.find(name), components)
    return runtime


def network_targets(components: LoadedComponents) -> dict[str, Any]:
    return {"unet": components.unet, **{encoder.slot: encoder.model for encoder in components.text_encoders}}


def diffusers_pipeline(components: LoadedComponents) -> Any:
    """diffusers' own pipeline around the very same modules, with the scheduler our "Euler" + "Automatic" uses."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    from webui.conditioning.tokenizer import load_clip_tokenizer

    arch = components.architecture
    scheduler = EulerDiscreteScheduler.from_config({**arch.scheduler_config(), "timestep_spacing": "linspace",
                                                    "steps_offset": 1, "use_karras_sigmas": False,
                                                    "interpolation_type": "linear"})
    encoders = {encoder.slot: encoder.model for encoder in components.text_encoders}
    pipe: Any
    if "text_encoder_2" in encoders and arch.family == "sdxl":
        pipe = StableDiffusionXLPipeline(vae=components.vae, text_encoder=encoders["text_encoder"],
                                         text_encoder_2=encoders["text_encoder_2"], tokenizer=load_clip_tokenizer(),
                                         tokenizer_2=load_clip_tokenizer(pad_with_eos=False), unet=components.unet,
                                         scheduler=scheduler)
    else:
        pipe = StableDiffusionPipeline(vae=components.vae, text_encoder=encoders["text_encoder"],
                                       tokenizer=load_clip_tokenizer(), unet=components.unet, scheduler=scheduler,
                                       safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --- txt2img ------------------------------------------------------------------------------------------------------

def txt2img_figures(runtime: Runtime, pipe: Any, shape: Shape, device: torch.device, name: str) -> dict:
    """Per-step time (steps 2..n), it/s and peak VRAM, ours vs diffusers, alternating, for each batch size."""
    figures: dict[str, Any] = {}
    for batch in shape.batches:
        run_ours(runtime, shape.size, 2, str(device), checkpoint=name, batch=batch)  # warm-up: kernels, autotune
        if pipe is not None:
            run_diffusers(pipe, shape.size, 2, str(device), batch=batch)
        steps: dict[str, list[float]] = {"ours": [], "diffusers": []}
        peaks: dict[str, float | None] = {}
        for repeat in range(shape.repeats):
            order = ["ours", "diffusers"] if repeat % 2 == 0 else ["diffusers", "ours"]
            for side in order:
                if side == "diffusers" and pipe is None:
                    continue
                peak_vram_reset(device)
                if side == "ours":
                    run = run_ours(runtime, shape.size, shape.steps, str(device), checkpoint=name, batch=batch)
                else:
                    run = run_diffusers(pipe, shape.size, shape.steps, str(device), batch=batch)
                steps[side].extend(run.step_times)
                peaks[side] = peak_vram_mib(device)
        row: dict[str, Any] = {"size": shape.size, "steps": shape.steps, "batch": batch, "cfg": CFG_SCALE}
        for side, values in steps.items():
            if values:
                per_step = statistics.median(values)
                row[side] = {"per_step_s": per_step, "it_s": 1.0 / per_step, "peak_vram_mib": peaks.get(side),
                             "samples": len(values)}
        if "diffusers" in row:
            row["ratio_per_step"] = row["ours"]["per_step_s"] / row["diffusers"]["per_step_s"]
        figures[f"batch{batch}"] = row
    return figures


# --- LoRA ---------------------------------------------------------------------------------------------------------

def copy_bandwidth(device: torch.device, mib: int) -> float:
    """Bytes moved (read + write) per second by `dst.copy_(src)` on the device, best of 5."""
    elements = mib * 2**20 // 2
    source = torch.randn(elements, device=device, dtype=torch.float16)
    target = torch.empty_like(source)
    target.copy_(source)
    best = min(timed(device, lambda: target.copy_(source))[0] for _ in range(5))
    return 2 * source.numel() * source.element_size() / best


def _our_lora_round(targets: dict[str, Any], family: str, names: ModelNames, files: list[Path],
                    device: torch.device, record: Callable[[str, float], None]) -> int:
    """One round of our LoRA steps; returns the bytes the kept pristine copies hold."""
    parse, lora_a = timed(device, lambda: read_lora(files[0], names))
    lora_b = read_lora(files[1], names)
    patcher = LoraPatcher(targets, family)
    record("ours parse", parse)
    record("ours first apply", timed(device, lambda: patcher.apply([(lora_a, 0.8, 0.8)]))[0])
    record("ours switch A->B", timed(device, lambda: patcher.apply([(lora_b, 0.8, 0.8)]))[0])
    record("ours restore", timed(device, patcher.restore)[0])
    keeper = LoraPatcher(targets, family, keep_backups=True)
    keeper.apply([(lora_a, 0.8, 0.8)])
    keeper.restore()
    record("ours re-apply with kept copies", timed(device, lambda: keeper.apply([(lora_a, 0.8, 0.8)]))[0])
    keeper.restore()
    return keeper.backup_bytes()


def lora_figures(components: LoadedComponents, pipe: Any, shape: Shape, device: torch.device,
                 bandwidth: float, repeats: int) -> dict:
    """First apply / switch / restore / re-apply with kept copies, against diffusers' load+fuse and the floor
    set by the bytes each step must move at the measured copy bandwidth."""
    targets = network_targets(components)
    family = components.architecture.family
    names = ModelNames.from_models(targets, family)
    layers = lora_layers(names)
    weights: list[Any] = [names.modules[key].weight for key in layers]
    touched = sum(weight.numel() * weight.element_size() for weight in weights)
    times: dict[str, list[float]] = {}

    def record(label: str, seconds: float) -> None:
        times.setdefault(label, []).append(seconds)

    with tempfile.TemporaryDirectory() as folder:
        files = [kohya_file(names, layers, Path(folder) / f"{tag}.safetensors", shape.rank, seed)
                 for seed, tag in enumerate("AB", start=1)]
        for path in files:
            path.read_bytes()  # page cache warm for both sides
        kept_bytes = 0
        for _ in range(repeats):
            kept_bytes = _our_lora_round(targets, family, names, files, device, record)
            free_memory()
        if pipe is not None:
            for _ in range(repeats):
                load = timed(device, lambda: pipe.load_lora_weights(str(files[0]), adapter_name="a"))[0]
                fuse = timed(device, lambda: pipe.fuse_lora(lora_scale=0.8))[0]
                record("diffusers load+fuse", load + fuse)
                pipe.unfuse_lora()
                pipe.unload_lora_weights()
                free_memory()
    median = {label: statistics.median(values) for label, values in times.items()}
    # Bytes each step must move at least: a switch reads the pristine copy and writes the weight; a first apply
    # also makes the copy (read + write); a restore is one copy back.
    floors = {"ours first apply": 4 * touched / bandwidth, "ours switch A->B": 2 * touched / bandwidth,
              "ours restore": 2 * touched / bandwidth, "ours re-apply with kept copies": 2 * touched / bandwidth}
    result: dict[str, Any] = {"rank": shape.rank, "layers": len(layers), "touched_mib": touched / 2**20,
                              "kept_backup_mib": kept_bytes / 2**20, "seconds": median,
                              "floor_s": floors, "vs_floor": {k: median[k] / v for k, v in floors.items()}}
    if "diffusers load+fuse" in median:
        result["vs_diffusers_load_fuse"] = {k: median[k] / median["diffusers load+fuse"] for k in floors}
    return result


# --- fast paths ---------------------------------------------------------------------------------------------------

def per_step(runtime: Runtime, shape: Shape, device: torch.device, name: str) -> tuple[float, float | None]:
    run_ours(runtime, shape.size, 2, str(device), checkpoint=name)
    peak_vram_reset(device)
    run = run_ours(runtime, shape.size, shape.steps, str(device), checkpoint=name)
    return statistics.median(run.step_times), peak_vram_mib(device)


def compile_figures(shape: Shape, config: DeviceConfig, workdir: Path, backend: str) -> dict:
    """--compile: time of the first (compiling) call, steady per-step, and frames compiled across LoRA switches."""
    from dataclasses import replace

    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()
    counter = CompileCounterWithBackend(backend)
    compiled = replace(config, compile=True, compile_backend=counter)
    components = build_components(shape, compiled)
    runtime = runtime_with(components, compiled, workdir / "compile", "bench-compile")
    first, _ = timed(config.device, lambda: run_ours(runtime, shape.size, 2, str(config.device),
                                                      checkpoint="bench-compile"))
    step, peak = per_step(runtime, shape, config.device, "bench-compile")
    frames = counter.frame_count
    targets = network_targets(components)
    names = ModelNames.from_models(targets, components.architecture.family)
    layers = lora_layers(names)
    patcher = LoraPatcher(targets, components.architecture.family)
    with tempfile.TemporaryDirectory() as folder:
        for seed in (1, 2):
            path = kohya_file(names, layers, Path(folder) / f"{seed}.safetensors", shape.rank, seed)
            patcher.apply([(read_lora(path, names), 0.8, 0.8)])
            run_ours(runtime, shape.size, 2, str(config.device), checkpoint="bench-compile")
    patcher.restore()
    after_switch, _ = per_step(runtime, shape, config.device, "bench-compile")
    result = {"backend": backend, "first_call_s": first, "per_step_s": step, "peak_vram_mib": peak,
              "frames_before_lora": frames, "frames_after_lora_switches": counter.frame_count,
              "recompiled_after_lora_switch": counter.frame_count != frames, "per_step_after_switches_s": after_switch}
    torch._dynamo.reset()
    return result


def vae_figures(components: LoadedComponents, shape: Shape, config: DeviceConfig) -> dict:
    """One VAE decode at the shape's size: whole picture against diffusers' tiling, time and peak VRAM (the
    decode already runs one image at a time, which is what VAE slicing does)."""
    vae: Any = components.vae
    side = shape.size // 2 ** (len(vae.config.block_out_channels) - 1)
    latents = torch.randn(1, vae.config.latent_channels, side, side, device=config.device, dtype=config.vae_dtype)
    result: dict[str, Any] = {"size": shape.size}
    for label, tiled in (("whole", False), ("tiled", True)):
        if tiled:
            vae.enable_tiling()
        try:
            vae.decode(latents, return_dict=False)  # warm-up
            peak_vram_reset(config.device)
            seconds, _ = timed(config.device, lambda: vae.decode(latents, return_dict=False))
            result[label] = {"seconds": seconds, "peak_vram_mib": peak_vram_mib(config.device)}
        finally:
            if tiled:
                vae.disable_tiling()
    return result
