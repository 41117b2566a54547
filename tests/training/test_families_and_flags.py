"""SD2 v-prediction and SDXL (both encoders, time ids) train on tiny models; kohya `--config_file`, on-disk latent
caches and LoCon conv layers behave as in sd-scripts."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors import safe_open

from tests.helpers.tiny_models import build_tiny_checkpoint
from tests.training.conftest import make_star_dataset
from webui.training.config import config_from_args, config_from_dict
from webui.training.trainer import train


def _train(tmp_path, checkpoint, **extra):
    data = make_star_dataset(tmp_path / "img", count=2, repeats=1)
    values = {"pretrained_model_name_or_path": str(checkpoint), "train_data_dir": str(data),
              "output_dir": str(tmp_path / "out"), "output_name": "fam", "resolution": "64", "network_dim": 2,
              "learning_rate": 1e-3, "max_train_steps": 2, "seed": 1, **extra}
    return train(config_from_dict(values))


@pytest.mark.parametrize("arch, prefixes, version, extra", [
    ("sd2-v", {"lora_unet_", "lora_te_"}, "sd_v2_v", {}),
    ("sdxl", {"lora_unet_", "lora_te1_", "lora_te2_"}, "sdxl_base_v1-0", {}),
    ("sdxl", {"lora_unet_"}, "sdxl_base_v1-0", {"network_train_unet_only": True, "cache_text_encoder_outputs": True}),
])
def test_each_family_trains_and_writes_its_kohya_keys(tmp_path, arch, prefixes, version, extra):
    checkpoint = build_tiny_checkpoint(arch, tmp_path / "ckpt" / f"tiny-{arch}.safetensors")
    result = _train(tmp_path, checkpoint, min_snr_gamma=5, **extra)
    assert result.final is not None and all(np.isfinite(result.history.losses))
    with safe_open(str(result.final), "pt") as handle:
        keys = list(handle.keys())
        metadata = handle.metadata()
    assert {key.split("text_model")[0] if "_te" in key else "lora_unet_" for key in keys} == prefixes
    assert metadata["ss_base_model_version"] == version
    if arch == "sdxl":  # SGM block names, as kohya writes SDXL LoRAs
        assert any(key.startswith("lora_unet_input_blocks_") for key in keys)
        assert not any(key.startswith("lora_unet_down_blocks_") for key in keys)


def test_config_file_toml_with_flags_winning_and_disk_latent_cache(tmp_path, demo_checkpoint):
    data = make_star_dataset(tmp_path / "img", count=2, repeats=1)
    config_file = tmp_path / "config.toml"
    config_file.write_text(f"""
[model]
pretrained_model_name_or_path = '{demo_checkpoint}'
[dataset]
train_data_dir = '{data}'
resolution = "64,64"
cache_latents_to_disk = true
[training]
network_dim = 8
network_args = ["conv_dim=2", "conv_alpha=1"]
max_train_steps = 2
output_dir = '{tmp_path / "out"}'
output_name = "from toml"
""", encoding="utf-8")
    config = config_from_args(["--config_file", str(config_file), "--network_dim", "4"])
    assert config.network_dim == 4 and config.output_name == "from toml" and config.cache_latents_to_disk
    result = train(config)
    caches = sorted(p.name for p in (data / "1_zkstar").glob("*_sd.npz"))
    assert caches == ["0_0064x0064_sd.npz", "1_0064x0064_sd.npz"]
    with safe_open(str(result.final), "pt") as handle:
        shapes = {key: handle.get_slice(key).get_shape() for key in handle.keys()}
        assert handle.metadata()["ss_network_args"] == '{"conv_dim": "2", "conv_alpha": "1.0"}'
    conv_downs = [s for k, s in shapes.items() if k.endswith("lora_down.weight") and len(s) == 4 and s[2] == 3]
    assert conv_downs and all(s[0] == 2 for s in conv_downs)  # 3x3 ResNet convs at conv_dim
    assert max(s[0] for k, s in shapes.items() if k.endswith("lora_down.weight")) == 4
    again = train(config)  # the cache on disk is reused: same latents, same first loss
    assert again.history.losses[0] == pytest.approx(result.history.losses[0], abs=1e-6)
    assert torch.get_num_threads() == 1
