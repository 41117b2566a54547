"""An in-process API (the real router over a demo-model runtime) with a good LoRA, an absurd one and an upscaler."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import load_file, save_file

from scripts.eval_demo_model import DEFAULT_CHECKPOINT
from tests.api.server import write_demo_lora
from tests.helpers.upscaler_models import compact_model, save_model
from webui.api.server import api_only_app, build_api_router
from webui.models.device import device_config
from webui.paths import Folders
from webui.processing.runtime import Runtime, build_runtime


@pytest.fixture(scope="session")
def robust_runtime(tmp_path_factory) -> Runtime:
    torch.set_num_threads(1)  # the demo model is tiny; one thread is fastest on a shared CPU
    root = tmp_path_factory.mktemp("robust")
    good = write_demo_lora(root / "Lora" / "good.safetensors")
    # The same LoRA with weights near 1e30: its merge overflows to Inf/NaN (black pictures).
    huge = {key: value * 1e30 for key, value in load_file(str(good)).items()}
    save_file(huge, str(root / "Lora" / "huge.safetensors"))
    save_model(compact_model(scale=4, num_feat=32, num_conv=8), root / "ESRGAN" / "slow-x4.pth")
    folders = Folders(checkpoints=DEFAULT_CHECKPOINT.parent, vae=root / "VAE", lora=(root / "Lora",),
                      embeddings=root / "embeddings", outputs=root / "outputs", data=root,
                      upscalers=(root / "ESRGAN",))
    runtime = build_runtime(folders, device_config(device="cpu"), hashing=False)
    runtime.models.load(DEFAULT_CHECKPOINT.name)
    return runtime


@pytest.fixture(scope="session")
def client(robust_runtime) -> Iterator[TestClient]:
    with TestClient(api_only_app(build_api_router(robust_runtime))) as test_client:
        yield test_client
