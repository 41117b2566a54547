"""CUDA paths: patcher backups and fp16 rounding on the GPU, the VAE fp16 overflow fallback, --medvram/--lowvram
placement, fast paths end to end, and the training step (when a trainer exists). `gpu` tests skip without CUDA."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL

from tests.helpers.tiny_models import TINY_VAE, build_tiny_checkpoint
from tests.networks.tiny import kohya_lora, lora_targets, param_hash, tiny_models
from webui.models.device import DeviceConfig, device_config, on_device
from webui.networks import LoraPatcher, ModelNames, parse_lora
from webui.paths import Folders
from webui.processing.model_calls import decode_latents
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.runtime import build_runtime
from webui.processing.txt2img import txt2img

REPO = Path(__file__).resolve().parents[2]
CUDA = pytest.param("cuda", marks=pytest.mark.gpu)


@pytest.fixture()
def world():
    models = tiny_models(sdxl=True)
    names = ModelNames.from_models(models)
    layers = lora_targets(names, (torch.nn.Linear, torch.nn.Conv2d))
    loras = [parse_lora(tag, kohya_lora(names, layers[i::2], rank=4, alpha=2.0, seed=i + 1), {}, names)
             for i, tag in enumerate("ab")]
    return models, names, layers, loras


def _cpu_hash(models: dict[str, torch.nn.Module]) -> str:
    return param_hash({k: copy.deepcopy(m).cpu() for k, m in models.items()})


@pytest.mark.gpu
@pytest.mark.parametrize("keep_backups", [False, True])
def test_cuda_fp16_host_backups_are_pinned_and_restore_bit_exact(world, keep_backups: bool) -> None:
    models, _, _, loras = world
    cuda = {k: copy.deepcopy(m).half().cuda() for k, m in models.items()}
    before = _cpu_hash(cuda)
    patcher = LoraPatcher(cuda, backup_device="cpu", keep_backups=keep_backups)
    patcher.apply([(loras[0], 1.0, 0.7)])
    assert all(b.weight.is_pinned() for b in patcher._backups.values())  # async-capable host copies
    merged = _cpu_hash(cuda)
    patcher.apply([(loras[1], 0.5, 0.5), (loras[0], 1.0, 0.7)])
    patcher.restore()
    assert _cpu_hash(cuda) == before
    assert (patcher.backup_bytes() > 0) == keep_backups
    patcher.apply([(loras[0], 1.0, 0.7)])
    assert _cpu_hash(cuda) == merged  # a re-apply (from kept or fresh copies) lands on the same bits
    patcher.restore()
    assert _cpu_hash(cuda) == before


@pytest.mark.gpu
def test_cuda_fp16_merge_rounds_once_from_the_fp32_sum(world) -> None:
    models, _, layers, loras = world
    cuda = {k: copy.deepcopy(m).half().cuda() for k, m in models.items()}
    pristine = {k: {n: p.detach().float().cpu() for n, p in m.named_parameters()} for k, m in cuda.items()}
    LoraPatcher(cuda).apply([(loras[0], 1.0, 0.7), (loras[1], -0.4, 0.9)])
    for target, name in layers[:16]:
        w0 = pristine[target][name + ".weight"]
        expected = w0.clone()
        for lora, (te, unet) in zip(loras, ((1.0, 0.7), (-0.4, 0.9)), strict=True):
            patch = lora.modules.get((target, name))
            if patch is not None:
                expected += (unet if target == "unet" else te) * patch.dense(w0)
        actual = cuda[target].get_submodule(name).weight.detach().cpu()
        rounded = expected.half()
        # One rounding of the fp32 sum (a neighbour where GPU fp32 summation order crosses a rounding boundary).
        assert bool(((actual == rounded) | (actual == torch.nextafter(rounded, actual))).all())
        assert int((actual != rounded).sum()) <= max(2, actual.numel() // 200)


def _overflowing_vae() -> AutoencoderKL:
    """A tiny VAE whose first decoder conv leaves fp16's range (as SDXL's VAE does), while fp32 stays finite."""
    torch.manual_seed(0)
    vae = AutoencoderKL(**TINY_VAE).eval()
    with torch.no_grad():
        vae.decoder.conv_in.weight.mul_(1e5)
    return vae


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_vae_fp16_overflow_falls_back_to_fp32_for_that_decode(device: str) -> None:
    vae = _overflowing_vae().half().to(device)
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1)).to(device)
    full = DeviceConfig(torch.device(device), torch.float32, torch.float32)
    with torch.no_grad():
        # What an fp32 decode of these very (fp16-stored) weights gives.
        reference = decode_latents(SimpleNamespace(vae=copy.deepcopy(vae).float()), latents, full)  # type: ignore
        raw = vae.decode(latents.half() / vae.config.scaling_factor, return_dict=False)[0]
    assert not torch.isfinite(raw).all()  # the plain fp16 decode really overflows
    config = DeviceConfig(torch.device(device), torch.float16, torch.float16)
    with torch.no_grad():
        decoded = decode_latents(SimpleNamespace(vae=vae), latents, config)  # type: ignore[arg-type]
    assert torch.isfinite(decoded).all()
    torch.testing.assert_close(decoded, reference)
    assert next(vae.parameters()).dtype == torch.float16  # the VAE is back in its own dtype afterwards


@pytest.mark.gpu
@pytest.mark.parametrize("offload", ["medvram", "lowvram"])
def test_offload_runs_on_the_gpu_and_leaves_weights_on_the_cpu(offload: str) -> None:
    unet = tiny_models()["unet"].half()
    generator = torch.Generator().manual_seed(3)
    sample = torch.randn(1, 4, 8, 8, generator=generator).half().cuda()
    context = torch.randn(1, 77, 32, generator=generator).half().cuda()
    with torch.no_grad():
        expected = copy.deepcopy(unet).cuda()(sample, 500, encoder_hidden_states=context).sample
    config = device_config(device="cuda", precision="half", medvram=offload == "medvram",
                           lowvram=offload == "lowvram")
    assert config.offload == offload and config.storage_device.type == "cpu"
    torch.cuda.synchronize()
    resident = torch.cuda.memory_allocated()
    devices_seen: set[str] = set()
    # A forward (post) hook registered first runs before --lowvram's own hook sends the layer back to the CPU.
    unet.conv_in.register_forward_hook(lambda m, _a, _o: devices_seen.add(m.weight.device.type))
    with torch.no_grad(), on_device(unet, config):
        output = unet(sample, 500, encoder_hidden_states=context).sample
    assert devices_seen == {"cuda"}
    assert {p.device.type for p in unet.parameters()} == {"cpu"}
    del output
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() <= resident  # nothing of the model stayed on the GPU
    with torch.no_grad(), on_device(unet, config):
        torch.testing.assert_close(unet(sample, 500, encoder_hidden_states=context).sample, expected)


@pytest.mark.gpu
@pytest.mark.parametrize("flags", [{}, {"medvram": True}, {"lowvram": True}, {"upcast_sampling": True},
                                   {"precision": "bf16"}, {"channels_last": True, "compile": True}])
def test_txt2img_on_cuda_with_each_fast_path_matches_the_plain_fp16_image(tmp_path, flags: dict) -> None:
    checkpoints = tmp_path / "Stable-diffusion"
    build_tiny_checkpoint("sd1", checkpoints / "tiny-sd1.safetensors")
    images = []
    for options in ({}, flags):
        folders = Folders(checkpoints=checkpoints, vae=tmp_path / "VAE", lora=(tmp_path / "Lora",),
                          embeddings=tmp_path / "embeddings", outputs=tmp_path / "outputs", data=tmp_path)
        runtime = build_runtime(folders, device_config(device="cuda", **options), hashing=False)
        request = make_request(Txt2ImgRequest, dict(prompt="a red circle", steps=4, sampler_name="Euler", width=64,
                                                    height=64, seed=7, cfg_scale=5.0, save_images=False,
                                                    save_grid=False))
        images.append(np.asarray(txt2img(request, runtime).images[0], dtype=np.int16))
    tolerance = 40 if flags.get("precision") == "bf16" else 8  # bf16 keeps 8 mantissa bits against fp16's 11
    assert np.abs(images[0] - images[1]).max() <= tolerance


@pytest.mark.gpu
def test_training_step_benchmark_runs_on_cuda(tmp_path) -> None:
    script = REPO / "bench" / "train_step.py"
    if not script.is_file():
        pytest.skip("bench/train_step.py (the LoRA trainer's step benchmark) is not in this tree yet")
    usage = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=REPO)
    if "--device" not in usage.stdout:
        pytest.skip("bench/train_step.py has no --device option to run it on CUDA")
    extra = ["--quick"] if "--quick" in usage.stdout else []
    run = subprocess.run([sys.executable, str(script), "--device", "cuda", *extra], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
