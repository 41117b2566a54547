"""LoRA folders: A1111 name/alias resolution, path safety, cache and reload, metadata, sidecars, hashes."""
from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tests.networks.tiny import kohya_lora, lora_targets, tiny_models
from webui.errors import UserInputError
from webui.networks import LoraLibrary, LoraNotFoundError, ModelNames, file_hash


@pytest.fixture(scope="module")
def names() -> ModelNames:
    return ModelNames.from_models(tiny_models(sdxl=False))


def _write(path: Path, names: ModelNames, metadata: dict[str, str] | None = None, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(kohya_lora(names, lora_targets(names)[:4], seed=seed), str(path), metadata=metadata)
    return path


@pytest.fixture()
def folders(tmp_path: Path, names: ModelNames):
    lora, lyco = tmp_path / "Lora", tmp_path / "LyCORIS"
    _write(lora / "style" / "watercolor.safetensors", names, {"ss_output_name": "wcStyle"})
    _write(lora / "Detail_Tweaker.safetensors", names)
    _write(lora / "a.safetensors", names, {"ss_output_name": "shared"}, seed=1)
    _write(lora / "b.safetensors", names, {"ss_output_name": "shared"}, seed=2)
    _write(lyco / "deep" / "er" / "hada.safetensors", names)
    torch.save(kohya_lora(names, lora_targets(names)[:2]), lyco / "old.pt")
    (lora / "notes.txt").write_text("not a model")
    secret = tmp_path / "secret.safetensors"
    _write(secret, names)
    return [lora, lyco], tmp_path


def test_scan_and_resolution_order(folders) -> None:
    roots, _ = folders
    library = LoraLibrary(roots)
    assert [e.name for e in library.entries()] == ["a", "b", "Detail_Tweaker", "hada", "old", "watercolor"]
    assert library.resolve("watercolor").path.name == "watercolor.safetensors"
    assert library.resolve("wcStyle").name == "watercolor"  # alias from ss_output_name
    assert library.resolve("detail_tweaker").name == "Detail_Tweaker"  # case-insensitive fallback
    assert library.resolve("hada").path.parent.name == "er"  # recursive
    assert library.resolve("a").name == "a"  # a forbidden (shared) alias leaves the stems usable
    with pytest.raises(LoraNotFoundError):
        library.resolve("shared")


def test_unknown_name_suggests_close_matches(folders) -> None:
    library = LoraLibrary(folders[0])
    with pytest.raises(LoraNotFoundError, match=r"LoRA not found: watercolour \(did you mean watercolor"):
        library.resolve("watercolour")
    with pytest.raises(UserInputError):
        library.resolve("nothing-like-it")


def test_names_never_escape_the_roots(folders, names: ModelNames) -> None:
    roots, tmp = folders
    library = LoraLibrary(roots)
    for name in ("../secret", "../../secret", str(tmp / "secret.safetensors"), "style/watercolor"):
        with pytest.raises(LoraNotFoundError):
            library.load(name, names)
    link = roots[0] / "linked.safetensors"
    os.symlink(tmp / "secret.safetensors", link)
    with pytest.raises(LoraNotFoundError):
        library.resolve("linked")  # a link leading outside the folder is not listed


def test_cache_reuses_and_reloads_on_mtime_change(folders, names: ModelNames) -> None:
    library = LoraLibrary(folders[0])
    first = library.load("watercolor", names)
    assert library.load("wcStyle", names) is first
    path = first.path
    _write(path, names, {"ss_output_name": "wcStyle"}, seed=9)
    future = time.time() + 5
    os.utime(path, (future, future))
    second = library.load("watercolor", names)
    assert second is not first and second.identity != first.identity
    assert library.cached_bytes() == second.nbytes()  # the stale parse was dropped
    assert len(library.load("old", names).modules) == 2


def test_cache_respects_its_byte_budget(folders, names: ModelNames) -> None:
    library = LoraLibrary(folders[0], cache_bytes=1)
    first = library.load("watercolor", names)
    library.load("Detail_Tweaker", names)
    assert library.cached_bytes() == first.nbytes()  # only the newest one stays
    assert library.load("watercolor", names) is not first


def test_info_reads_metadata_sidecars_and_preview(tmp_path: Path, names: ModelNames) -> None:
    metadata = {"ss_output_name": "inkStyle", "ss_base_model_version": "sd_v1", "ss_network_dim": "16",
                "ss_network_alpha": "8", "ss_network_module": "networks.lora", "ss_training_comment": "by me",
                "ss_tag_frequency": json.dumps({"10_ink": {"ink": 20, "1girl": 5, "sketch": 12},
                                                "5_more": {"sketch": 10, " ": 3}}),
                "modelspec.architecture": "stable-diffusion-v1/lora", "modelspec.title": "Ink"}
    path = _write(tmp_path / "ink.safetensors", names, metadata)
    (tmp_path / "ink.preview.png").write_bytes(b"\x89PNG")
    (tmp_path / "ink.json").write_text(json.dumps({"activation text": "ink style", "preferred weight": 0.7,
                                                   "notes": "n", "sd version": "SDXL"}))
    (tmp_path / "ink.txt").write_text("A description.\n")
    info = LoraLibrary([tmp_path]).info("inkStyle")
    assert info.trigger_words == ("sketch", "ink", "1girl")
    assert (info.network_dim, info.network_alpha, info.training_comment) == ("16", "8", "by me")
    assert info.modelspec == {"architecture": "stable-diffusion-v1/lora", "title": "Ink"}
    assert info.preview == tmp_path / "ink.preview.png"
    assert info.user.activation_text == "ink style" and info.user.preferred_weight == 0.7
    assert info.user.description == "A description."
    assert info.family == "sdxl"  # the user's "sd version" overrides the metadata guess
    assert info.alias == "inkStyle" and info.path == path


def test_hash_skips_the_header_and_is_lazy(tmp_path: Path, names: ModelNames) -> None:
    one = _write(tmp_path / "one.safetensors", names, {"ss_output_name": "x"})
    two = _write(tmp_path / "two.safetensors", names, {"ss_output_name": "a much longer different name"})
    data = one.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    expected = hashlib.sha256(data[8 + length:]).hexdigest()
    assert file_hash(one) == expected == file_hash(two)  # metadata edits do not change the hash
    library = LoraLibrary([tmp_path])
    lora = library.load("one", names)
    assert "sha256" not in lora.__dict__  # not computed until asked
    assert lora.short_hash == expected[:12]
    trusted = _write(tmp_path / "three.safetensors", names, {"sshs_model_hash": "f" * 64})
    assert library.load("three", names).short_hash == "f" * 12 and trusted.exists()
    torch.save({"k": torch.zeros(1)}, tmp_path / "p.pt")
    assert file_hash(tmp_path / "p.pt") == hashlib.sha256((tmp_path / "p.pt").read_bytes()).hexdigest()
