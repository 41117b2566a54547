"""Benchmark: our parse + chunk + encode of a 200-token prompt vs plain tokenize + CLIP encode of the same chunks.

Run: .venv/bin/python -m bench.prompt_encode [--repeats 20]
Uses a full-size SD1.5 CLIP-L text encoder with random weights (CPU, fp32); prints medians and the ratio.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import CLIPTextConfig, CLIPTextModel

from webui.conditioning import PromptEncoder, TextEncoderSlot
from webui.conditioning.tokenizer import BOS_ID, EOS_ID, load_clip_tokenizer
from webui.models.architectures import load_architecture
from webui.prompts import parse_prompt

PROMPT = ", ".join(["(masterpiece:1.2), best quality, 1girl, solo, long hair, looking at viewer, smile",
                    "[blue|red] dress, outdoors, (cherry blossoms:0.8), sky, cloud, day, standing"] * 4)


def plain_encode(model: CLIPTextModel, tokenizer, text: str) -> torch.Tensor:
    """The reference: tokenize once, cut into 75-token chunks, add BOS/EOS/pad, encode each, concatenate."""
    ids = tokenizer(text, add_special_tokens=False, truncation=False).input_ids
    chunks = [ids[i:i + 75] for i in range(0, len(ids), 75)]
    outputs = []
    for chunk in chunks:
        tokens = [BOS_ID] + chunk + [EOS_ID] * (76 - len(chunk))
        outputs.append(model(torch.tensor([tokens])).last_hidden_state)
    return torch.cat(outputs, dim=1)


def ours(model: CLIPTextModel, text: str) -> torch.Tensor:
    parsed = parse_prompt(text, steps=20)
    encoder = PromptEncoder([TextEncoderSlot.sd1(model)])  # fresh: no cache hit across repeats
    return encoder.encode([parsed.subprompts[0].text_at(0)], clip_skip=1).context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = CLIPTextConfig(**load_architecture("sd1").text_encoders[0].config_dict())
    model = CLIPTextModel(config).eval()
    tokenizer = load_clip_tokenizer()
    token_count = len(tokenizer(PROMPT, add_special_tokens=False).input_ids)
    times: dict[str, list[float]] = {"plain": [], "ours": []}
    with torch.no_grad():
        ours(model, PROMPT), plain_encode(model, tokenizer, PROMPT)  # warm-up
        for _ in range(args.repeats):
            for name, run in (
                ("plain", lambda: plain_encode(model, tokenizer, PROMPT)),
                ("ours", lambda: ours(model, PROMPT)),
            ):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    plain, mine = statistics.median(times["plain"]), statistics.median(times["ours"])
    print(f"prompt: {token_count} tokens, {-(-token_count // 75)} chunks; torch threads {torch.get_num_threads()}")
    print(f"plain tokenize+encode  median {plain * 1000:8.1f} ms")
    print(f"ours parse+encode      median {mine * 1000:8.1f} ms")
    print(f"ratio ours/plain       {mine / plain:.3f}")


if __name__ == "__main__":
    main()
