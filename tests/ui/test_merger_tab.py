"""Checkpoint Merger tab handlers: results land in the model folders, are listed at once, and names stay inside."""
from __future__ import annotations

import gradio as gr
import pytest
import torch
from safetensors.torch import load_file

from tests.helpers.tiny_models import build_tiny_checkpoint
from webui.errors import PathOutsideRootError, UserInputError
from webui.models.device import device_config
from webui.paths import Folders
from webui.processing.runtime import Runtime, build_runtime
from webui.ui.merger_tab import build_merger, run_extract, run_merge


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Runtime:
    root = tmp_path_factory.mktemp("merger_ui")
    for name, seed in (("base", 1), ("tuned", 2)):
        build_tiny_checkpoint("sd1", root / "Stable-diffusion" / f"{name}.safetensors", seed=seed)
    folders = Folders(checkpoints=root / "Stable-diffusion", vae=root / "VAE", lora=(root / "Lora",),
                      embeddings=root / "embeddings", outputs=root / "outputs", data=root, upscalers=())
    return build_runtime(folders, device_config(device="cpu"), hashing=False)


def test_merge_writes_into_the_checkpoint_folder_and_is_listed_at_once(runtime: Runtime) -> None:
    message = run_merge(runtime, "base.safetensors", "tuned", None, "", 0.3, "Weighted sum", True, True,
                        "A, B or C", "None", "")
    expected = "0.7(base) + 0.3(tuned).safetensors"
    assert expected in message and expected in [info.name for info in runtime.registry.checkpoints()]
    merged = load_file(str(runtime.folders.checkpoints / expected))
    a = load_file(str(runtime.folders.checkpoints / "base.safetensors"))
    b = load_file(str(runtime.folders.checkpoints / "tuned.safetensors"))
    key = "model.diffusion_model.out.2.weight"
    assert merged[key].dtype == torch.float16 and torch.equal(merged[key], (a[key] * 0.7 + b[key] * 0.3).half())
    with pytest.raises(UserInputError, match="already exists"):
        run_merge(runtime, "base", "tuned", None, "", 0.3, "Weighted sum", True, True, "A, B or C", "None", "")
    with pytest.raises(PathOutsideRootError):
        run_merge(runtime, "base", "tuned", None, "../escaped", 0.3, "Weighted sum", False, True, "Don't", "None", "")
    with pytest.raises(UserInputError, match="needs model C"):
        run_merge(runtime, "base", "tuned", None, "x", 0.3, "Add difference", False, True, "Don't", "None", "")


def test_extract_button_writes_a_lora_the_library_knows(runtime: Runtime) -> None:
    message = run_extract(runtime, "base", "tuned", "", 4, 0)
    assert "tuned-extracted-dim4.safetensors" in message
    assert "tuned-extracted-dim4" in [entry.name for entry in runtime.loras.entries()]


def test_the_tab_builds_with_a1111_labels(runtime: Runtime) -> None:
    with gr.Blocks() as demo:
        build_merger(runtime, gr.Dropdown(label="checkpoint"))
    labels = {str(getattr(block, "label", "")) for block in demo.blocks.values()}
    for label in ("Primary model (A)", "Secondary model (B)", "Tertiary model (C)", "Custom Name (Optional)",
                  "Interpolation Method", "Checkpoint format", "Save as float16", "Bake in VAE", "Copy config from"):
        assert any(label in text for text in labels), label
