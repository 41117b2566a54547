"""How the demo model's training picks its checkpoint: sampled pictures of selection prompts, scored by the analysers.

The selection prompts and seed (1000) are disjoint from the held-out sets in `demo_eval_sets`, which judge the
shipped checkpoint; `tests/demo/test_scene_analyser.py` checks that they stay disjoint.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from diffusers import EulerAncestralDiscreteScheduler
from PIL import Image

from scripts.demo_eval_sets import pair_prompts, position_prompts
from scripts.demo_scenes import Position, pair_caption, single_caption
from scripts.demo_shapes import caption, eval_prompts
from scripts.demo_vocab import DemoVocab
from tests.demo.analyser import analyse, matches
from tests.demo.scene_analyser import blobs, in_position, pair_matches
from webui.models.architectures import Architecture

SELECTION_SEED = 1000


def selection_positions() -> list[tuple[str, str, str, Position]]:
    """16 lone shapes with a position word, built from the selection triples; none is a held-out position prompt."""
    held_out = set(position_prompts())
    prompts = [(*triple, list(Position)[index % 4]) for index, triple in enumerate(eval_prompts()[::3])]
    return [prompt for prompt in prompts if prompt not in held_out]


def selection_pairs() -> list[tuple[tuple[str, str], tuple[str, str], str]]:
    """Up to 16 two-shape prompts from pairs of selection triples; none is a held-out pair prompt."""
    held_out = set(pair_prompts())
    triples = eval_prompts()
    prompts = []
    for index in range(0, 48, 3):
        (colour, shape, background), (other, other_shape, _) = triples[index], triples[(index + 19) % 48]
        prompt = ((colour, shape), (other, other_shape), background)
        if colour != other and prompt not in held_out:
            prompts.append(prompt)
    return prompts


@torch.no_grad()
def sample(models: dict[str, torch.nn.Module], arch: Architecture, context: torch.Tensor, uncond: torch.Tensor,
           seed: int, size: int, steps: int = 20, cfg: float = 7.0) -> torch.Tensor:
    """Euler a with CFG; returns images in [-1, 1]."""
    scheduler = EulerAncestralDiscreteScheduler.from_config(arch.scheduler_config())
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    n = context.shape[0]
    latents = torch.randn((n, 4, size // 4, size // 4), generator=generator) * scheduler.init_noise_sigma
    both = torch.cat([uncond.expand(n, -1, -1), context])
    for t in scheduler.timesteps:
        x = scheduler.scale_model_input(torch.cat([latents, latents]), t)
        out_u, out_c = models["unet"](x, t, encoder_hidden_states=both).sample.chunk(2)
        latents = scheduler.step(out_u + cfg * (out_c - out_u), t, latents, generator=generator).prev_sample
    vae = models["vae"]
    return vae.decode(latents / vae.config.scaling_factor).sample.clamp(-1, 1)


def _pictures(models: dict[str, torch.nn.Module], arch: Architecture, vocab: DemoVocab, captions: list[str],
              size: int, seed: int) -> np.ndarray:
    encoder = models["text_encoder"]
    uncond = encoder(input_ids=vocab.empty[None]).last_hidden_state
    context = encoder(input_ids=vocab.encode(captions)).last_hidden_state
    images = sample(models, arch, context, uncond, seed, size)
    return ((images.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).byte().numpy()


def selection_score(models: dict[str, torch.nn.Module], arch: Architecture, vocab: DemoVocab,
                    seed: int = SELECTION_SEED) -> dict[str, float]:
    """Rates on the selection prompts: colour/background/shape at 64 px (all 48) and 128 px (every 4th), lone
    shapes in the asked place ("pos64") and two-shape prompts with both shapes right in either order ("pair64")."""
    scores: dict[str, float] = {}
    with torch.no_grad():
        for size, triples in ((64, eval_prompts()), (128, eval_prompts()[::4])):
            pixels = _pictures(models, arch, vocab, [caption(*t) for t in triples], size, seed)
            hits = np.array([matches(analyse(p), c, s, b) for p, (c, s, b) in zip(pixels, triples, strict=True)])
            for name, column in zip(("fg", "bg", "shape"), hits.T.astype(float), strict=True):
                scores[f"{name}{size}"] = round(float(column.mean()), 3)
        placed = selection_positions()
        pixels = _pictures(models, arch, vocab, [single_caption(c, s, b, position=p) for c, s, b, p in placed],
                           64, seed)
        scores["pos64"] = _rate([_placed(p, prompt) for p, prompt in zip(pixels, placed, strict=True)])
        pairs = selection_pairs()
        pixels = _pictures(models, arch, vocab, [pair_caption(*left, *right, b) for left, right, b in pairs], 64, seed)
        scores["pair64"] = _rate([pair_matches(Image.fromarray(p), left, right, ordered=False)[1]
                                  for p, (left, right, _) in zip(pixels, pairs, strict=True)])
    return scores


def _placed(pixels: np.ndarray, prompt: tuple[str, str, str, Position]) -> bool:
    colour, shape, _, position = prompt
    found = blobs(pixels)
    return bool(found) and found[0].colour == colour and found[0].shape == shape and in_position(found[0], position,
                                                                                                  64, 64)


def _rate(hits: list[Any]) -> float:
    return round(sum(bool(h) for h in hits) / max(1, len(hits)), 3)
