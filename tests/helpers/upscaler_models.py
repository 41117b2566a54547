"""Small upscaler models in real spandrel architectures (random or hand-set weights) saved as model files."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from webui.models.spandrel_import import import_spandrel


def compact_model(scale: int = 4, num_feat: int = 8, num_conv: int = 2, seed: int = 0,
                  identity: bool = False, in_channels: int = 3) -> torch.nn.Module:
    """A RealESRGAN Compact (SRVGGNetCompact) network; `identity` zeroes the last conv so it is exactly a
    nearest-neighbour upscale (the architecture adds the nearest-upsampled input to its output)."""
    import_spandrel()
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(seed)
    model = Compact(num_in_ch=in_channels, num_out_ch=in_channels, num_feat=num_feat, num_conv=num_conv,
                    upscale=scale)
    if identity:
        last = model.body[-1]
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
    return model.eval()


def esrgan_model(scale: int = 2, num_filters: int = 8, num_blocks: int = 1, seed: int = 0) -> torch.nn.Module:
    """An ESRGAN RRDBNet in the old (A1111 "ESRGAN" folder) key layout, random weights."""
    import_spandrel()
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(seed)
    return ESRGAN(num_filters=num_filters, num_blocks=num_blocks, scale=scale).eval()


def save_model(model: torch.nn.Module, path: Path, wrap: str | None = None) -> Path:
    """Save the state dict as .pth/.pt (optionally inside {wrap: …} as BasicSR's params_ema) or .safetensors."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().clone().contiguous() for key, value in model.state_dict().items()}
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({wrap: state} if wrap else state, str(path))
    return path
