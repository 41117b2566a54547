"""Plain kohya LoRA/LoCon merges equal diffusers' `load_lora_weights` + `fuse_lora` on the same tiny modules."""
from __future__ import annotations

import copy

import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

from tests.networks.tiny import kohya_lora, lora_targets, tiny_models
from webui.conditioning.tokenizer import load_clip_tokenizer
from webui.networks import LoraPatcher, ModelNames, parse_lora

TOLERANCE = 1e-5


def _tiny_vae() -> AutoencoderKL:
    return AutoencoderKL(block_out_channels=(32,), down_block_types=("DownEncoderBlock2D",),
                         up_block_types=("UpDecoderBlock2D",), latent_channels=4, norm_num_groups=32)


def _pipeline(models: dict[str, torch.nn.Module]):
    if "text_encoder_2" in models:
        return StableDiffusionXLPipeline(
            vae=_tiny_vae(), text_encoder=models["text_encoder"], text_encoder_2=models["text_encoder_2"],
            tokenizer=load_clip_tokenizer(), tokenizer_2=load_clip_tokenizer(pad_with_eos=False),
            unet=models["unet"], scheduler=DDIMScheduler())
    return StableDiffusionPipeline(
        vae=_tiny_vae(), text_encoder=models["text_encoder"], tokenizer=load_clip_tokenizer(), unet=models["unet"],
        scheduler=DDIMScheduler(), safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def _max_relative_error(ours: dict[str, torch.nn.Module], reference: dict[str, torch.nn.Module]) -> float:
    worst = 0.0
    for target, model in ours.items():
        ref_params = dict(reference[target].named_parameters())
        for key, param in model.named_parameters():
            expected = ref_params[key]
            error = (param.detach() - expected.detach()).abs().max() / expected.abs().max().clamp_min(1e-12)
            worst = max(worst, float(error))
    return worst


def _changed_fraction(before: dict[str, torch.nn.Module], after: dict[str, torch.nn.Module]) -> int:
    changed = 0
    for target, model in after.items():
        ref = dict(before[target].named_parameters())
        changed += sum(int(not torch.equal(p, ref[k])) for k, p in model.named_parameters())
    return changed


@pytest.mark.parametrize("sdxl, sgm", [(False, False), (True, True), (True, False)])
def test_single_kohya_lora_matches_diffusers_fuse(sdxl: bool, sgm: bool) -> None:
    models = tiny_models(sdxl=sdxl)
    pristine = copy.deepcopy(models)
    names = ModelNames.from_models(models)
    layers = lora_targets(names, (torch.nn.Linear, torch.nn.Conv2d))  # includes 3x3 LoCon resnet convs
    tensors = kohya_lora(names, layers, rank=4, alpha=2.0, seed=1, sgm=sgm)
    reference = copy.deepcopy(models)
    pipe = _pipeline(reference)
    pipe.load_lora_weights({k: v.clone() for k, v in tensors.items()})
    pipe.fuse_lora(lora_scale=0.7)
    pipe.unload_lora_weights()

    lora = parse_lora("one", tensors, {}, names)
    assert not lora.unmatched_keys and len(lora.modules) == len(layers)
    report = LoraPatcher(models).apply([(lora, 0.7, 0.7)])
    assert report.layers_written == len(layers) and not report.rejected
    assert _changed_fraction(pristine, models) >= len(layers)  # the merge did something
    assert _max_relative_error(models, reference) <= TOLERANCE


def test_two_loras_with_a_negative_weight_match_diffusers_multi_adapter_fuse() -> None:
    models = tiny_models(sdxl=False)
    names = ModelNames.from_models(models)
    layers = lora_targets(names, (torch.nn.Linear, torch.nn.Conv2d))
    first = kohya_lora(names, layers, rank=4, alpha=2.0, seed=1)
    second = kohya_lora(names, layers[::2], rank=8, alpha=8.0, seed=2)
    reference = copy.deepcopy(models)
    pipe = _pipeline(reference)
    pipe.load_lora_weights({k: v.clone() for k, v in first.items()}, adapter_name="a")
    pipe.load_lora_weights({k: v.clone() for k, v in second.items()}, adapter_name="b")
    pipe.set_adapters(["a", "b"], adapter_weights=[0.8, -0.5])
    pipe.fuse_lora(adapter_names=["a", "b"], lora_scale=1.0)
    pipe.unload_lora_weights()

    stack = [(parse_lora("a", first, {}, names), 0.8, 0.8), (parse_lora("b", second, {}, names), -0.5, -0.5)]
    LoraPatcher(models).apply(stack)
    assert _max_relative_error(models, reference) <= TOLERANCE


def test_peft_dotted_keys_equal_the_same_factors_under_kohya_names() -> None:
    models = tiny_models(sdxl=True)
    names = ModelNames.from_models(models)
    layers = lora_targets(names)
    kohya = kohya_lora(names, layers, rank=4, alpha=None, seed=3)
    dotted: dict[str, torch.Tensor] = {}
    for target, name in layers:
        base = names.kohya_name(target, name)
        # PEFT keys for CLIPTextModel carry a `text_model.` level in files even where our module has none.
        path = name if target == "unet" or name.startswith("text_model.") else "text_model." + name
        dotted[f"{target}.{path}.lora_A.weight"] = kohya[f"{base}.lora_down.weight"]
        dotted[f"{target}.{path}.lora_B.weight"] = kohya[f"{base}.lora_up.weight"]
    from_kohya, from_peft = copy.deepcopy(models), copy.deepcopy(models)
    LoraPatcher(from_kohya).apply([(parse_lora("k", kohya, {}, names), 1.0, 1.0)])
    peft_lora = parse_lora("p", dotted, {}, names)
    assert not peft_lora.unmatched_keys and len(peft_lora.modules) == len(layers)
    LoraPatcher(from_peft).apply([(peft_lora, 1.0, 1.0)])
    for target in models:
        for (key, a), b in zip(
            from_kohya[target].state_dict().items(), from_peft[target].state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), key
