"""Interrupt checks inside long model calls: each block of the UNet, VAE and text encoders first asks the job,
and so does each query chunk of a big SDPA attention call."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

from webui.models.attention import InterruptibleSdpa
from webui.processing.jobs import JobState

# Module depth that gets a check: deep enough to reach every attention, feed-forward and resnet
# ("down_blocks.0.attentions.0.transformer_blocks.0.attn1", "decoder.up_blocks.0.resnets.1",
# "text_model.encoder.layers.3"), so a single long step or VAE pass is cut within one of them.
HOOK_DEPTH = 6


def _chunking_processors(module: torch.nn.Module) -> list[InterruptibleSdpa]:
    # The processor fast_paths chose; one object is usually shared by every attention of a model.
    found: dict[int, InterruptibleSdpa] = {}
    for block in module.modules():
        processor = getattr(block, "processor", None)
        if isinstance(processor, InterruptibleSdpa):
            found[id(processor)] = processor
    return list(found.values())


def _blocks(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    for name, block in module.named_modules():
        if name.count(".") < HOOK_DEPTH:
            yield block


@contextlib.contextmanager
def interruptible(job: JobState, components: Any) -> Iterator[None]:
    """While active, Interrupt stops prompt encoding, every UNet step and every (tiled) VAE pass within one block.

    The check raises JobInterrupted from inside the model call; the generation loop catches it as it does after
    a sampler step, so the images finished so far are kept.
    """
    def check(_module: torch.nn.Module, _args: tuple) -> None:
        job.check()

    models = [getattr(components, "unet", None), getattr(components, "vae", None),
              *(getattr(encoder, "model", None) for encoder in getattr(components, "text_encoders", ()))]
    modules = [model for model in models if isinstance(model, torch.nn.Module)]
    handles = [block.register_forward_pre_hook(check) for model in modules for block in _blocks(model)]
    # A self-attention at 768 px and up is one call of seconds: its processor checks between query chunks.
    processors = [processor for model in modules for processor in _chunking_processors(model)]
    for processor in processors:
        processor.check = job.check
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for processor in processors:
            processor.check = None
