"""GPU fast-path switches on the CPU: flag → dtype policy, attention kernels, channels-last, upcast sampling, and
torch.compile that a LoRA switch (in-place merge) never recompiles."""
from __future__ import annotations

import copy

import pytest
import torch

from tests.networks.tiny import kohya_lora, lora_targets, tiny_models
from webui.models.device import Attention, DeviceConfig, Precision, device_config
from webui.models.fast_paths import is_compiled, prepare_unet
from webui.networks import LoraPatcher, ModelNames, parse_lora

CPU = torch.device("cpu")


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(1, 4, 8, 8, generator=generator), torch.tensor([500]),
            torch.randn(1, 77, 32, generator=generator))


def _run(unet: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    sample, timestep, context = inputs
    with torch.no_grad():
        return unet(sample, timestep, encoder_hidden_states=context, return_dict=False)[0]


@pytest.mark.parametrize(("precision", "upcast", "dtype", "autocast", "input_dtype"), [
    (Precision.AUTOCAST, False, torch.float16, True, torch.float16),
    (Precision.HALF, False, torch.float16, False, torch.float16),
    (Precision.BF16, False, torch.bfloat16, True, torch.bfloat16),
    (Precision.FULL, True, torch.float32, False, torch.float32),
    (Precision.HALF, True, torch.float16, True, torch.float32),  # --upcast-sampling turns autocast on
])
def test_precision_flags_pick_the_unet_dtype_autocast_and_input_dtype(precision, upcast, dtype, autocast,
                                                                      input_dtype) -> None:
    config = device_config(device="cuda", precision=precision, upcast_sampling=upcast)
    assert (config.dtype, config.autocast, config.unet_input_dtype) == (dtype, autocast, input_dtype)
    assert config.vae_dtype == dtype
    assert device_config(device="cuda", precision=precision, no_half_vae=True).vae_dtype == torch.float32


def test_the_cpu_stays_fp32_without_autocast_whatever_the_flags() -> None:
    config = device_config(device="cpu", precision="bf16", upcast_sampling=True, medvram=True)
    assert (config.dtype, config.vae_dtype, config.autocast, config.offload) == (torch.float32, torch.float32,
                                                                                 False, "none")
    assert config.unet_input_dtype == torch.float32


def test_attention_kernels_and_channels_last_give_the_same_output() -> None:
    models = tiny_models()
    inputs = _inputs()
    reference = _run(models["unet"], inputs)
    for attention in Attention:
        for channels_last in (False, True):
            unet = copy.deepcopy(models["unet"])
            prepare_unet(unet, DeviceConfig(CPU, torch.float32, torch.float32, attention=attention,
                                            channels_last=channels_last))
            if channels_last:
                assert unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(_run(unet, inputs), reference, rtol=1e-4, atol=1e-5)


def test_upcast_sampling_runs_half_weights_from_fp32_inputs_under_autocast() -> None:
    """On the CPU autocast speaks bf16: the same code path a GPU takes with fp16 (--upcast-sampling)."""
    from webui.processing.model_calls import make_unet_call

    models = tiny_models()
    inputs = _inputs(1)
    reference = _run(models["unet"], inputs)
    unet = copy.deepcopy(models["unet"]).to(torch.bfloat16)
    config = DeviceConfig(CPU, torch.bfloat16, torch.bfloat16, autocast=True, upcast_sampling=True)
    seen: list[torch.dtype] = []
    unet.conv_in.register_forward_pre_hook(lambda _m, args: seen.append(args[0].dtype))

    class Components:  # make_unet_call needs only `.unet`
        pass

    components = Components()
    components.unet = unet  # type: ignore[attr-defined]
    call = make_unet_call(components, config)  # type: ignore[arg-type]
    sample, timestep, context = inputs
    with torch.no_grad():
        output = call(sample, timestep, {"context": context})
    assert output.dtype == torch.float32
    assert seen == [torch.float32]  # the UNet got fp32 inputs; autocast chose bf16 for the conv itself
    assert (output - reference).abs().max() < 0.05 * reference.abs().max()


def test_compiled_unet_is_not_recompiled_by_lora_switches_and_sees_the_merged_weights() -> None:
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    models = tiny_models()
    eager = copy.deepcopy(models)
    names = ModelNames.from_models(models)
    layers = lora_targets(names, (torch.nn.Linear, torch.nn.Conv2d))
    loras = [parse_lora(tag, kohya_lora(names, layers[i::2], rank=4, seed=i + 1), {}, names)
             for i, tag in enumerate("ab")]
    counter = CompileCounter()
    prepare_unet(models["unet"], DeviceConfig(CPU, torch.float32, torch.float32, compile=True,
                                              compile_backend=counter))
    assert is_compiled(models["unet"])
    inputs = _inputs(2)
    compiled, reference = LoraPatcher(models), LoraPatcher(eager)
    torch.testing.assert_close(_run(models["unet"], inputs), _run(eager["unet"], inputs))
    frames = counter.frame_count
    assert frames >= 1
    for stack in ([(loras[0], 1.0, 0.8)], [(loras[1], 1.0, 0.8)], [(loras[0], 0.5, 0.5), (loras[1], 1.0, 1.0)], []):
        compiled.apply(stack)
        reference.apply(stack)
        # The compiled graph reads the live (merged) parameters, exactly as the eager model does.
        torch.testing.assert_close(_run(models["unet"], inputs), _run(eager["unet"], inputs))
    assert counter.frame_count == frames, "a LoRA switch recompiled the UNet"
    torch._dynamo.reset()


@pytest.mark.parametrize(("argv", "expected"), [
    ([], {"autocast": True, "dtype": torch.float16, "attention": Attention.SDPA, "channels_last": False}),
    (["--precision", "full"], {"autocast": False, "dtype": torch.float32}),
    (["--no-half"], {"autocast": False, "dtype": torch.float32}),
    (["--precision", "bf16", "--opt-channelslast", "--compile"],
     {"dtype": torch.bfloat16, "channels_last": True, "compile": True}),
    (["--opt-sdp-no-mem-attention"], {"attention": Attention.SDPA_NO_MEM}),
    (["--disable-opt-split-attention", "--opt-sdp-attention"], {"attention": Attention.CLASSIC}),
    (["--upcast-sampling", "--precision", "half"], {"upcast_sampling": True, "unet_input_dtype": torch.float32}),
    (["--lora-keep-backups", "--medvram"], {"lora_keep_backups": True, "offload": "medvram"}),
])
def test_a1111_command_line_flags_reach_the_device_config(argv: list[str], expected: dict) -> None:
    import app

    args = app.build_parser().parse_args(argv)
    config = app.device_config_from_args(args, device="cuda")
    assert {key: getattr(config, key) for key in expected} == expected
