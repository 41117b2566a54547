"""Tokens for the demo model's training: a small trainable table for the caption words, frozen rows for the rest.

Unseen words (quality tags, names, trigger words) keep their random CLIP rows. Training inserts such rows into
captions as distractors, so the model learns to draw what the known words say whatever else the prompt holds.
"""
from __future__ import annotations

import torch

from webui.conditioning.tokenizer import load_clip_tokenizer

VOCAB_SIZE = 49408
_SPECIAL = (49406, 49407)  # BOS, EOS (also SD1's padding)


def token_embedding_owner(text_encoder: torch.nn.Module) -> torch.nn.Module:
    return getattr(text_encoder, "text_model", text_encoder).embeddings


class SplitEmbedding(torch.nn.Module):
    """ids < trainable rows: the trainable table; ids >= it: frozen full-table row (id - trainable rows)."""

    def __init__(self, trainable: torch.Tensor, frozen: torch.Tensor) -> None:
        super().__init__()
        self.trainable = torch.nn.Parameter(trainable.clone())
        self.register_buffer("frozen", frozen.clone(), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = self.trainable.shape[0]
        known = self.trainable[ids.clamp(max=rows - 1)]
        unknown = self.frozen[(ids - rows).clamp(min=0)]
        return torch.where((ids < rows)[..., None], known, unknown)


class DemoVocab:
    """Tokenises captions once; remaps their ids onto the trainable rows; writes them back into the full table."""

    def __init__(self, text_encoder: torch.nn.Module, texts: list[str], colour_words: set[str]) -> None:
        self.tokenizer = load_clip_tokenizer(True)
        ids = self._tokenise(sorted(set(texts)) + [""])
        self.used = torch.unique(ids)
        self.remap = torch.zeros(VOCAB_SIZE, dtype=torch.long)
        self.remap[self.used] = torch.arange(len(self.used))
        owner = token_embedding_owner(text_encoder)
        self.full_table = owner.token_embedding.weight.detach().clone()
        unused = torch.ones(VOCAB_SIZE, dtype=torch.bool)
        unused[self.used] = False
        unused[list(_SPECIAL)] = False
        self.distractor_ids = torch.nonzero(unused).flatten()
        owner.token_embedding = SplitEmbedding(self.full_table[self.used], self.full_table)
        self.eos_row = int(self.remap[_SPECIAL[1]])
        self.colour_ids = {int(self.remap[t]) for w in colour_words for t in self._word_ids(w)}
        self.empty = self.encode([""])[0]

    def _tokenise(self, texts: list[str]) -> torch.Tensor:
        return self.tokenizer(texts, padding="max_length", max_length=77, truncation=True,
                              return_tensors="pt")["input_ids"]

    def _word_ids(self, word: str) -> list[int]:
        return list(self.tokenizer(word, add_special_tokens=False)["input_ids"])

    def encode(self, texts: list[str]) -> torch.Tensor:
        """Trainable-row ids [N, 77] of texts made of known words only."""
        ids = self._tokenise(texts)
        if not torch.isin(ids, self.used).all():
            raise ValueError(f"unknown words in {texts[:3]}")
        return self.remap[ids]

    def colour_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """1.0 where a colour word's token sits, for emphasis augmentation."""
        return torch.isin(ids, torch.tensor(sorted(self.colour_ids))).float()

    def with_distractors(self, ids: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
        """For `share` of the rows, insert 1-8 random unseen tokens at one random place of the caption."""
        out = ids.clone()
        eos = self.eos_row
        rows = len(self.used)
        for row in range(ids.shape[0]):
            if float(torch.rand((), generator=generator)) >= share:
                continue
            tokens = ids[row].tolist()
            length = tokens.index(eos)  # BOS ... last word, then EOS padding
            count = int(torch.randint(1, 9, (), generator=generator))
            where = int(torch.randint(1, length + 1, (), generator=generator))
            pick = torch.randint(0, len(self.distractor_ids), (count,), generator=generator)
            extra = (self.distractor_ids[pick] + rows).tolist()
            body = (tokens[:where] + extra + tokens[where:length])[:76]
            out[row] = torch.tensor(body + [eos] * (77 - len(body)))
        return out

    def full_state_dict(self, text_encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The encoder's state dict with the real 49408-row table (trained rows written over the random ones)."""
        state = {k: v.detach().clone() for k, v in text_encoder.state_dict().items()
                 if not k.endswith("token_embedding.trainable")}
        owner = token_embedding_owner(text_encoder)
        table = self.full_table.clone()
        table[self.used] = owner.token_embedding.trainable.detach()
        prefix = "text_model.embeddings.token_embedding" if hasattr(text_encoder, "text_model") else \
            "embeddings.token_embedding"
        state[f"{prefix}.weight"] = table
        return state


class WordProbe(torch.nn.Module):
    """Reads each caption word back from the text encoder's output; its loss keeps every known word recoverable.

    Without it the jointly trained encoder let go of words the UNet had not yet learnt to use: in run 2 "on the left"
    and "on the right" came out 0.03 apart (outputs of norm 7), so no UNet training could place a shape by them.
    The probe is a training aid only; it is not saved.
    """

    def __init__(self, width: int, rows: int, eos_row: int) -> None:
        super().__init__()
        self.read = torch.nn.Linear(width, rows)
        self.eos_row = eos_row

    def loss(self, context: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the known words and the first end token (distractors and padding left out)."""
        rows = self.read.out_features
        eos = ids == self.eos_row
        padding = (eos.cumsum(dim=1) - eos.long()) > 0
        keep = (ids < rows) & ~padding
        return torch.nn.functional.cross_entropy(self.read(context[keep]), ids[keep])
