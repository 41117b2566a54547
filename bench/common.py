"""Shared benchmark fixtures: a cached full-size random SD1.5 checkpoint plus a local diffusers config folder."""
from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

REPO_ROOT = Path(__file__).resolve().parent.parent

from webui.offline import enforce_offline  # noqa: E402

enforce_offline()  # before diffusers/transformers are imported anywhere below

import torch  # noqa: E402

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

CACHE_DIR = REPO_ROOT / "bench" / ".cache"
CHECKPOINT_DIR = CACHE_DIR / "Stable-diffusion"
CHECKPOINT_NAME = "sd15-random-fp16"
CHECKPOINT_PATH = CHECKPOINT_DIR / f"{CHECKPOINT_NAME}.safetensors"
DIFFUSERS_CONFIG_DIR = CACHE_DIR / "sd15-diffusers-config"
TOKENIZER_ASSETS = REPO_ROOT / "webui" / "assets" / "clip_tokenizer"
SEED = 20240601


def _random_like(shape: tuple[int, ...], key: str, generator: torch.Generator) -> torch.Tensor:
    """Seeded N(0, 0.02) weights; norm scales around 1 so activations stay in a normal floating-point range."""
    noise = torch.randn(shape, generator=generator, dtype=torch.float32) * 0.02
    leaf = key.rsplit(".", 1)[-1]
    is_norm_scale = leaf == "weight" and len(shape) == 1 and "norm" in key
    return (noise + 1.0 if is_norm_scale else noise).to(torch.float16)


def build_state_dicts(seed: int = SEED) -> dict[str, dict[str, torch.Tensor]]:
    """Full-size SD1.5 component state dicts (diffusers/transformers keys), from the meta models' shapes."""
    from tests.helpers.components import build_models
    from webui.models.architectures import load_architecture

    models = build_models(load_architecture("sd1"), meta=True)
    generator = torch.Generator().manual_seed(seed)
    return {
        name: {key: _random_like(tuple(t.shape), f"{name}.{key}", generator) for key, t in model.state_dict().items()}
        for name, model in models.items()
    }


def ensure_checkpoint(verbose: bool = True) -> Path:
    """Build the single-file LDM checkpoint once (about 2.1 GB, fp16) and return its path."""
    if CHECKPOINT_PATH.is_file():
        return CHECKPOINT_PATH
    from safetensors.torch import save_file

    from webui.models.architectures import load_architecture
    from webui.models.ldm_convert import diffusers_to_ldm

    started = time.perf_counter()
    components = build_state_dicts()
    ldm = diffusers_to_ldm(components, load_architecture("sd1"))
    del components
    # The converter may return views that share storage; safetensors wants each tensor on its own.
    ldm = {key: tensor.clone().contiguous() for key, tensor in ldm.items()}
    CHECKPOINT_DIR.mkdir(parents=True, exist_ok=True)
    partial = CHECKPOINT_PATH.with_suffix(".partial")
    save_file(ldm, str(partial), metadata={"format": "pt", "note": "random weights for benchmarks"})
    partial.rename(CHECKPOINT_PATH)
    if verbose:
        size = CHECKPOINT_PATH.stat().st_size / 2**30
        print(f"built {CHECKPOINT_PATH} ({len(ldm)} tensors, {size:.2f} GiB) in {time.perf_counter() - started:.1f} s")
    return CHECKPOINT_PATH


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def ensure_diffusers_config() -> Path:
    """A local diffusers-format config folder (no weights) generated from our shipped sd1 architecture."""
    if (DIFFUSERS_CONFIG_DIR / "model_index.json").is_file():
        return DIFFUSERS_CONFIG_DIR
    import diffusers
    import transformers

    from webui.models.architectures import load_architecture

    arch = load_architecture("sd1")
    folder = DIFFUSERS_CONFIG_DIR.with_name(DIFFUSERS_CONFIG_DIR.name + ".partial")
    shutil.rmtree(folder, ignore_errors=True)
    version = diffusers.__version__
    _write_json(folder / "model_index.json", {
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": version,
        "feature_extractor": [None, None], "safety_checker": [None, None], "requires_safety_checker": False,
        "image_encoder": [None, None],
        "scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    })
    _write_json(folder / "unet" / "config.json",
                {"_class_name": "UNet2DConditionModel", "_diffusers_version": version, **arch.unet_config()})
    _write_json(folder / "vae" / "config.json",
                {"_class_name": "AutoencoderKL", "_diffusers_version": version, **arch.vae_config()})
    text_config = transformers.CLIPTextConfig(**arch.text_encoders[0].config_dict()).to_dict()
    _write_json(folder / "text_encoder" / "config.json", {**text_config, "architectures": ["CLIPTextModel"]})
    _write_json(folder / "scheduler" / "scheduler_config.json", {
        "_class_name": "EulerDiscreteScheduler", "_diffusers_version": version, **arch.scheduler_config(),
        "timestep_spacing": "linspace", "steps_offset": 1, "use_karras_sigmas": False,
        "interpolation_type": "linear",
    })
    tokenizer = folder / "tokenizer"
    tokenizer.mkdir(parents=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(TOKENIZER_ASSETS / name, tokenizer / name)
    _write_json(tokenizer / "tokenizer_config.json", {
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "do_lower_case": True,
    })
    shutil.rmtree(DIFFUSERS_CONFIG_DIR, ignore_errors=True)
    folder.rename(DIFFUSERS_CONFIG_DIR)
    return DIFFUSERS_CONFIG_DIR


def load_diffusers_pipeline(dtype: torch.dtype, device: str = "cpu") -> "StableDiffusionPipeline":
    """diffusers' own single-file loader on the cached checkpoint, offline, with our generated config folder."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_single_file(
        str(CHECKPOINT_PATH), config=str(DIFFUSERS_CONFIG_DIR), local_files_only=True, torch_dtype=dtype,
        safety_checker=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler:
    """Samples this process's RSS in a thread; `peak_mib - start_mib` is the extra memory a call used."""

    def __init__(self, interval_s: float = 0.02) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval_s
        self._stop = threading.Event()
        self.start_mib = self.peak_mib = self._process.memory_info().rss / 2**20
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mib = max(self.peak_mib, self._process.memory_info().rss / 2**20)
            self._stop.wait(self._interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mib = max(self.peak_mib, self._process.memory_info().rss / 2**20)


def machine_summary() -> str:
    """CPU model, core count, torch threads and load average, for the results header."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{cpu}; {os.cpu_count()} logical CPUs; torch {torch.__version__} with {torch.get_num_threads()} threads; "
            f"load average {load}")


if __name__ == "__main__":
    print(ensure_checkpoint())
    print(ensure_diffusers_config())
