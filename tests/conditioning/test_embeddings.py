"""Textual inversion (reference section 13): file formats, width checks, name matching, chunk placement, hashes."""
from __future__ import annotations

import hashlib

import pytest
import torch
from safetensors.torch import save_file

from webui.conditioning import PromptEncoder, TextEncoderSlot, build_chunks, load_clip_tokenizer
from webui.conditioning.embeddings import EmbeddingDatabase


def dog_row(model) -> torch.Tensor:
    tok = load_clip_tokenizer()
    dog = tok("dog", add_special_tokens=False)["input_ids"][0]
    return model.embeddings.token_embedding.weight[dog].detach().clone()


@pytest.fixture()
def folder(tmp_path, clip_l):
    torch.save({"string_to_param": {"*": dog_row(clip_l)[None]}, "name": "x", "step": 1}, tmp_path / "zzdog.pt")
    torch.save({"string_to_param": {"*": torch.randn(3, 32)}}, tmp_path / "Three Vec.pt")
    torch.save({"<tok>": torch.randn(32)}, tmp_path / "learned.bin")
    torch.save({"string_to_param": {"*": torch.randn(1, 768)}}, tmp_path / "sd1big.pt")
    save_file({"clip_l": torch.randn(2, 32), "clip_g": torch.randn(2, 48)}, str(tmp_path / "xl.safetensors"))
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "broken.pt").write_bytes(b"not a pickle")
    sub = tmp_path / "sub"
    sub.mkdir()
    torch.save({"string_to_param": {"*": torch.randn(80, 32)}}, sub / "toolong.pt")
    return tmp_path


def test_loading_and_skipping(folder) -> None:
    db = EmbeddingDatabase(load_clip_tokenizer(), (32,)).load_folder(folder)
    assert set(db.embeddings) == {"zzdog", "Three Vec", "learned"}
    assert db.embeddings["learned"].vector_count == 1
    assert set(db.skipped) == {"sd1big", "xl", "broken", "toolong"}
    assert "width 768" in db.skipped["sd1big"]
    assert "empty" not in db.skipped
    xl = EmbeddingDatabase(load_clip_tokenizer(), (32, 48)).load_folder(folder)
    assert set(xl.embeddings) == {"xl"}


def test_embedding_vectors_replace_the_name_tokens(folder, clip_l) -> None:
    db = EmbeddingDatabase(load_clip_tokenizer(), (32,)).load_folder(folder)
    enc = PromptEncoder([TextEncoderSlot.sd1(clip_l, embeddings=db)])
    with_embedding = enc.encode(["a zzdog cat"])
    torch.testing.assert_close(with_embedding.context, enc.encode(["a dog cat"]).context)
    assert with_embedding.embeddings_used == ("zzdog",)
    # case-insensitive because the tokenizer lower-cases; inside emphasis it takes the weight
    chunks, count = build_chunks("(THREE VEC:1.5) cat", load_clip_tokenizer(), embeddings=db)
    assert count == 4
    assert chunks[0].tokens[1:4] == [0, 0, 0] and chunks[0].multipliers[1:5] == [1.5, 1.5, 1.5, 1.0]
    assert [(offset, e.name) for offset, e in chunks[0].fixes] == [(1, "Three Vec")]


def test_embedding_never_straddles_chunks(folder) -> None:
    db = EmbeddingDatabase(load_clip_tokenizer(), (32,)).load_folder(folder)
    chunks, _ = build_chunks("cat " * 73 + "three vec", load_clip_tokenizer(), embeddings=db, comma_backtrack=0)
    assert len(chunks) == 2
    assert chunks[0].tokens[74:76] == [49407, 49407]
    assert chunks[1].tokens[1:4] == [0, 0, 0] and chunks[1].fixes[0][0] == 1


def test_sdxl_embedding_gives_each_encoder_its_rows(folder, clip_l, clip_g) -> None:
    db = EmbeddingDatabase(load_clip_tokenizer(), (32, 48)).load_folder(folder)
    emb = db.embeddings["xl"]
    slots = [TextEncoderSlot.sdxl_clip_l(clip_l, embeddings=db), TextEncoderSlot.sdxl_clip_g(clip_g, embeddings=db)]
    assert torch.equal(emb.vectors_for("clip_l", False), emb.clip_l)
    assert torch.equal(emb.vectors_for("open_clip", True), emb.clip_g)
    cond = PromptEncoder(slots).encode(["a xl"])
    assert cond.context.shape == (1, 77, 80) and cond.embeddings_used == ("xl",)


def test_ti_hashes(folder) -> None:
    db = EmbeddingDatabase(load_clip_tokenizer(), (32,)).load_folder(folder)
    digest = hashlib.sha256((folder / "zzdog.pt").read_bytes()).hexdigest()[:12]
    assert db.hashes_infotext(["zzdog", "zzdog", "unknown"]) == f"zzdog: {digest}"
