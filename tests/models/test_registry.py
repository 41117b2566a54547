"""Checkpoint registry: scanning, refresh, hashes cached across restarts, A1111 name lookup, VAE rules."""
import hashlib

import pytest
import torch
from safetensors.torch import save_file

from webui.errors import PathOutsideRootError
from webui.models.hashing import HashCache
from webui.models.registry import CheckpointRegistry, UnknownCheckpointError
from webui.paths import resolve_inside


def _model(path, value=1.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": torch.full((4,), value)}, str(path))
    return path


def _registry(tmp_path, **kw):
    return CheckpointRegistry(tmp_path / "ckpt", tmp_path / "vae", HashCache(tmp_path / "cache.json"), **kw)


def test_scan_is_recursive_and_excludes_vae_files(tmp_path):
    _model(tmp_path / "ckpt" / "a.safetensors")
    _model(tmp_path / "ckpt" / "sub" / "b.safetensors")
    _model(tmp_path / "ckpt" / "a.vae.safetensors")
    (tmp_path / "ckpt" / "notes.txt").write_text("x")
    registry = _registry(tmp_path)
    assert [c.name for c in registry.checkpoints()] == ["a.safetensors", "sub/b.safetensors"]
    assert [v.name for v in registry.vaes()] == ["a.vae.safetensors"]


def test_refresh_picks_up_new_files(tmp_path):
    registry = _registry(tmp_path)
    assert registry.checkpoints() == []
    _model(tmp_path / "ckpt" / "new.safetensors")
    registry.refresh()
    assert [c.stem for c in registry.checkpoints()] == ["new"]


def test_short_hash_is_a1111s_and_cached_by_mtime(tmp_path, monkeypatch):
    path = _model(tmp_path / "ckpt" / "m.safetensors")
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    registry = _registry(tmp_path)
    info = registry.checkpoints()[0]
    assert registry.title(info) == "m.safetensors"  # not hashed yet: no hash in the title
    assert registry.short_hash(info) == expected[:10]
    assert registry.title(info) == f"m.safetensors [{expected[:10]}]"
    # A restart reads the cache instead of the file.
    import webui.models.hashing as hashing
    monkeypatch.setattr(hashing, "sha256_of_file", lambda p, start=0: pytest.fail("re-hashed"))
    again = _registry(tmp_path)
    assert again.short_hash(again.checkpoints()[0]) == expected[:10]


def test_changed_file_is_rehashed(tmp_path):
    path = _model(tmp_path / "ckpt" / "m.safetensors")
    registry = _registry(tmp_path)
    first = registry.short_hash(registry.checkpoints()[0])
    import os
    _model(path, 2.0)
    os.utime(path, (1, 1))
    assert registry.short_hash(registry.checkpoints()[0]) != first


@pytest.mark.parametrize("query", ["m", "m.safetensors", "sub/m.safetensors", "sub/m"])
def test_find_by_a1111_aliases(tmp_path, query):
    _model(tmp_path / "ckpt" / "sub" / "m.safetensors")
    _model(tmp_path / "ckpt" / "other.safetensors", 3.0)
    assert _registry(tmp_path).find(query).stem == "m"


def test_find_by_hash_and_title(tmp_path):
    path = _model(tmp_path / "ckpt" / "m.safetensors")
    _model(tmp_path / "ckpt" / "z.safetensors", 3.0)
    full = hashlib.sha256(path.read_bytes()).hexdigest()
    registry = _registry(tmp_path)
    assert registry.find(full[:10]).stem == "m"
    assert registry.find(f"m.safetensors [{full[:10]}]").stem == "m"


def test_unknown_and_escaping_names_are_refused(tmp_path):
    _model(tmp_path / "ckpt" / "m.safetensors")
    _model(tmp_path / "outside.safetensors")
    registry = _registry(tmp_path)
    for query in ["nope", "../outside.safetensors", str(tmp_path / "outside.safetensors"), "../outside"]:
        with pytest.raises(UnknownCheckpointError, match="Available: m.safetensors"):
            registry.find(query)
    with pytest.raises(PathOutsideRootError):
        resolve_inside(tmp_path / "ckpt", "../outside.safetensors")


def test_automatic_vae_prefers_file_beside_checkpoint(tmp_path):
    ckpt = _model(tmp_path / "ckpt" / "anime.safetensors")
    _model(tmp_path / "vae" / "anime.vae.pt")
    _model(tmp_path / "ckpt" / "anime.vae.safetensors")
    _model(tmp_path / "vae" / "other.vae.safetensors")
    registry = _registry(tmp_path)
    info = registry.find("anime")
    assert registry.automatic_vae(info).path == ckpt.with_name("anime.vae.safetensors")
    assert registry.find_vae("other.vae.safetensors").name == "other.vae.safetensors"


def test_bundled_demo_is_the_default_only_without_user_checkpoints(tmp_path):
    _model(tmp_path / "ckpt" / "demo-shapes.safetensors")
    registry = _registry(tmp_path)
    assert registry.default_checkpoint().stem == "demo-shapes"
    _model(tmp_path / "ckpt" / "my-model.safetensors", 2.0)
    registry.refresh()
    assert registry.default_checkpoint().stem == "my-model"
