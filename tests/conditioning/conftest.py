"""Tiny random CLIP text encoders (real vocabulary size, real tokenizer) shared by the conditioning tests."""
from __future__ import annotations

import pytest
import torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection


def _config(hidden: int, projection: int = 16) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=49408,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=projection,
        bos_token_id=49406,
        eos_token_id=49407,
    )


def _trained_looking(model: torch.nn.Module) -> torch.nn.Module:
    """Fresh LayerNorms (weight 1, bias 0) make every token's mean exactly 0, which no trained encoder has
    and which would make the "Original" mean rescale divide ~0 by ~0."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.normal_(1.0, 0.2)
                module.bias.normal_(0.3, 0.2)
    return model.eval()


@pytest.fixture(scope="session")
def clip_l() -> CLIPTextModel:
    torch.manual_seed(1234)
    return _trained_looking(CLIPTextModel(_config(32)))


@pytest.fixture(scope="session")
def clip_g() -> CLIPTextModelWithProjection:
    torch.manual_seed(4321)
    return _trained_looking(CLIPTextModelWithProjection(_config(48, projection=24)))
