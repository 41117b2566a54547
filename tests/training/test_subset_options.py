"""Per-subset options from --dataset_config (flip_aug, caption options) reach the batches, over the global flags."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from webui.training.batches import LatentSource, draw_flips, latent_cache_path
from webui.training.buckets import BucketSettings
from webui.training.dataset import load_dataset


def _half_image(path, caption: str) -> None:
    """Left half white, right half black: its mirror image is a different picture."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((32, 32, 3), np.uint8)
    array[:, :16] = 255
    Image.fromarray(array).save(path)
    path.with_suffix(".txt").write_text(caption, encoding="utf-8")


def _plan(tmp_path, global_flip: str):
    _half_image(tmp_path / "flipped" / "a.png", "flip me")
    _half_image(tmp_path / "plain" / "b.png", "keep me")
    _half_image(tmp_path / "inherit" / "c.png", "inherit me")
    config = tmp_path / "dataset.toml"
    config.write_text(f"""
[general]
{global_flip}
[[datasets]]
resolution = 32
  [[datasets.subsets]]
  image_dir = '{tmp_path / "flipped"}'
  flip_aug = true
  [[datasets.subsets]]
  image_dir = '{tmp_path / "plain"}'
  flip_aug = false
  [[datasets.subsets]]
  image_dir = '{tmp_path / "inherit"}'
""", encoding="utf-8")
    plan, _ = load_dataset(None, None, config, BucketSettings((32, 32)))
    return {item.path.parent.name: item for item in plan.items}


def test_subset_flip_aug_decides_which_images_are_mirrored(tmp_path):
    items = _plan(tmp_path, "")
    generator = torch.Generator().manual_seed(0)
    draws = [draw_flips([items["flipped"], items["plain"], items["inherit"]], False, generator) for _ in range(64)]
    assert {d[1] for d in draws} == {False} and {d[2] for d in draws} == {False}
    assert 16 < sum(d[0] for d in draws) < 48  # a fair coin for the subset that asks for flips
    # the global flag now covers the subset without its own setting; the explicit `false` still wins
    draws = [draw_flips([items["plain"], items["inherit"]], True, generator) for _ in range(64)]
    assert {d[0] for d in draws} == {False} and 16 < sum(d[1] for d in draws) < 48
    # no subset flips: no coin is drawn, so the noise stream of a run without flip_aug is unchanged
    before = generator.get_state()
    assert draw_flips([items["plain"]], True, generator) == [False]
    assert torch.equal(before, generator.get_state())


def test_latent_cache_holds_mirrors_only_for_flipping_subsets(tmp_path):
    items = _plan(tmp_path, "flip_aug = false")

    def encode(pixels: torch.Tensor) -> torch.Tensor:
        return pixels[:, :, ::8, ::8].clone()

    source = LatentSource(encode, flip_aug=False, cache=True, to_disk=True)
    source.fill_cache(list(items.values()), lambda: False)
    flipped = items["flipped"]
    straight, mirror = source.latents(flipped, False), source.latents(flipped, True)
    assert straight[0, 0, 0] > 0.9 and straight[0, 0, -1] < -0.9  # white left, black right
    torch.testing.assert_close(mirror, straight.flip(-1))
    with np.load(latent_cache_path(flipped)) as data:
        assert "latents_flipped" in data
    with np.load(latent_cache_path(items["plain"])) as data:
        assert "latents_flipped" not in data


def test_subset_options_the_trainer_does_not_apply_are_named_not_dropped_silently(tmp_path):
    _half_image(tmp_path / "pics" / "a.png", "a")
    config = tmp_path / "dataset.toml"
    config.write_text(f"""
[general]
color_aug = true
flip_aug = true
[[datasets]]
resolution = 32
  [[datasets.subsets]]
  image_dir = '{tmp_path / "pics"}'
  random_crop = true
  keep_tokens = 1
""", encoding="utf-8")
    plan, _ = load_dataset(None, None, config, BucketSettings((32, 32)))
    assert plan.warnings == ["dataset_config: not supported, ignored: color_aug, random_crop"]
    assert plan.subsets[0].flip_aug is True and plan.subsets[0].keep_tokens == 1
    assert _plan(tmp_path / "clean", "flip_aug = false")["plain"].subset.flip_aug is False
    plan, _ = load_dataset(None, None, tmp_path / "clean" / "dataset.toml", BucketSettings((32, 32)))
    assert plan.warnings == []
