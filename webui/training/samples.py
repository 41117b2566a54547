"""Sample images during training: kohya's prompt-file syntax, rendered by our txt2img with the current LoRA."""
from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import torch

from webui.errors import UserInputError
from webui.files import atomic_target
from webui.networks import LoraLibrary
from webui.training.outputs import save_lora

# kohya's `--sample_sampler` / `--ss` names -> our A1111 sampler names.
KOHYA_SAMPLERS = MappingProxyType({
    "ddim": "DDIM", "pndm": "PLMS", "lms": "LMS", "k_lms": "LMS", "euler": "Euler", "k_euler": "Euler",
    "euler_a": "Euler a", "k_euler_a": "Euler a", "heun": "Heun", "dpm_2": "DPM2", "k_dpm_2": "DPM2",
    "dpm_2_a": "DPM2 a", "k_dpm_2_a": "DPM2 a", "dpmsolver": "DPM++ 2M", "dpmsolver++": "DPM++ 2M",
    "dpmsingle": "DPM++ 2M"})


@dataclass(frozen=True)
class SamplePrompt:
    """One line of a kohya prompt file with its defaults (512², CFG 7.5, 30 steps, random seed)."""

    prompt: str
    negative_prompt: str = ""
    width: int = 512
    height: int = 512
    seed: int | None = None
    cfg_scale: float = 7.5
    steps: int = 30
    sampler: str | None = None


def parse_prompt_line(line: str) -> SamplePrompt | None:
    """`prompt --n neg --w 512 --h 768 --d 1 --l 7.5 --s 28 --ss euler_a`; None for blank and `#` lines."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    parts = line.split(" --")
    values: dict = {"prompt": parts[0].strip()}
    for part in parts[1:]:
        flag, _, value = part.strip().partition(" ")
        value = value.strip()
        try:
            if flag == "n":
                values["negative_prompt"] = value
            elif flag == "w":
                values["width"] = max(8, int(value) // 8 * 8)
            elif flag == "h":
                values["height"] = max(8, int(value) // 8 * 8)
            elif flag == "d":
                values["seed"] = int(value)
            elif flag == "l":
                values["cfg_scale"] = float(value)
            elif flag == "s":
                values["steps"] = min(1000, max(1, int(value)))
            elif flag == "ss":
                values["sampler"] = value
        except ValueError as error:
            raise UserInputError(f"sample prompt option --{flag} {value!r} is not a number") from error
    return SamplePrompt(**values)


def read_prompt_file(path: Path) -> list[SamplePrompt]:
    """A .txt prompt file (one prompt per line) or kohya's .json/.toml list of {prompt, negative_prompt, ...}."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserInputError(f"cannot read sample_prompts {path}: {error}") from error
    if Path(path).suffix.lower() in (".json", ".toml"):
        import tomllib
        data = json.loads(text) if Path(path).suffix.lower() == ".json" else tomllib.loads(text).get("prompt", [])
        entries = data if isinstance(data, list) else [data]
        return [SamplePrompt(prompt=str(e.get("prompt", "")), negative_prompt=str(e.get("negative_prompt", "")),
                             width=int(e.get("width", 512)), height=int(e.get("height", 512)),
                             seed=e.get("seed"), cfg_scale=float(e.get("scale", 7.5)),
                             steps=int(e.get("sample_steps", 30))) for e in entries]
    return [p for p in (parse_prompt_line(line) for line in text.splitlines()) if p is not None]


def sample_file_name(output_name: str, index: int, seed: int | None, *, epoch: int | None, step: int) -> str:
    """kohya: `<name>_e000003_00_<YYYYmmddHHMMSS>_<seed>.png` after an epoch, `<name>_000500_00_…` after steps."""
    when = f"e{epoch:06d}" if epoch is not None else f"{step:06d}"
    stamp = time.strftime("%Y%m%d%H%M%S")
    return f"{output_name}_{when}_{index:02d}_{stamp}" + (f"_{seed}" if seed is not None else "") + ".png"


class SampleRenderer:
    """Renders prompts through our txt2img with the network's current weights as `<lora:…:1>`."""

    def __init__(self, runtime, checkpoint: Path, default_sampler: str, clip_skip: int | None) -> None:
        self._scratch = Path(tempfile.mkdtemp(prefix="lora-samples-"))
        self.runtime = dataclasses.replace(runtime, loras=LoraLibrary([self._scratch]))
        self.checkpoint = checkpoint
        self.default_sampler = KOHYA_SAMPLERS.get(default_sampler, default_sampler)
        self.clip_skip = clip_skip or 1

    def close(self) -> None:
        """Remove the scratch folder of the temporary sample LoRA."""
        shutil.rmtree(self._scratch, ignore_errors=True)

    def render(self, prompts: list[SamplePrompt], tensors: Mapping[str, torch.Tensor], folder: Path,
               output_name: str, *, epoch: int | None, step: int) -> list[Path]:
        from webui.processing.request import Txt2ImgRequest, make_request
        from webui.processing.txt2img import txt2img

        save_lora(self._scratch / "training-sample.safetensors", tensors, {}, epoch=epoch, step=step)
        self.runtime.loras.scan()
        written = []
        for index, item in enumerate(prompts):
            seed = item.seed if item.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
            sampler = KOHYA_SAMPLERS.get(item.sampler or "", item.sampler or self.default_sampler)
            request = make_request(Txt2ImgRequest, {
                "prompt": f"{item.prompt} <lora:training-sample:1>", "negative_prompt": item.negative_prompt,
                "steps": item.steps, "cfg_scale": item.cfg_scale, "width": item.width, "height": item.height,
                "seed": seed, "sampler_name": sampler, "clip_skip": self.clip_skip, "checkpoint": self.checkpoint.stem,
                "save_images": False, "save_grid": False})
            image = txt2img(request, self.runtime).images[0]
            path = folder / sample_file_name(output_name, index, item.seed, epoch=epoch, step=step)
            with atomic_target(path) as partial:
                image.save(partial, format="PNG")
            written.append(path)
        return written
