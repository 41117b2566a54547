"""Dataset layout, TOML, counts, skipped files and kohya's bucket list, read from real files on disk."""
from pathlib import Path

import pytest
from PIL import Image

from webui.training.buckets import BucketSettings, assign_bucket, bucket_resolutions, crop_box
from webui.training.dataset import DatasetError, load_dataset


def _image(path: Path, size=(64, 64), caption: str | bytes | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 30, 30)).save(path)
    if caption is not None:
        target = path.with_suffix(".txt")
        target.write_bytes(caption if isinstance(caption, bytes) else caption.encode("utf-8"))


def test_kohya_512_bucket_list_has_the_17_documented_buckets():
    buckets = bucket_resolutions((512, 512), 256, 1024, 64)
    assert len(buckets) == 17
    expected = {(512, 512), (256, 832), (256, 896), (256, 960), (256, 1024), (320, 704), (320, 768), (384, 640),
                (448, 576)}
    assert expected | {(h, w) for w, h in expected} == set(buckets)
    assert len(bucket_resolutions((1024, 1024), 256, 2048, 64)) == 41
    assert {(832, 1216), (896, 1152), (1024, 1024)} <= set(bucket_resolutions((1024, 1024), 256, 2048, 64))


def test_bucket_assignment_picks_the_nearest_aspect_and_crops_inside():
    settings = BucketSettings((512, 512), enable_bucket=True)
    buckets = bucket_resolutions((512, 512))
    assert assign_bucket((1000, 1500), settings, buckets) == (384, 640)  # 0.667 -> 0.6 is nearest
    assert assign_bucket((700, 700), settings, buckets) == (512, 512)
    assert assign_bucket((300, 200), BucketSettings((512, 512)), buckets) == (512, 512)  # buckets off
    resized, box = crop_box((1000, 1500), (384, 640))
    assert resized[0] >= 384 and resized[1] >= 640 and box[2] - box[0] == 384 and box[3] - box[1] == 640


def test_folder_layout_counts_repeats_captions_and_class_tokens(tmp_path):
    root = tmp_path / "img"
    for i in range(3):
        _image(root / "10_sks dog" / f"{i}.png", caption=f"sks dog, photo {i}")
    _image(root / "10_sks dog" / "3.png")  # no caption: the class tokens are used
    _image(root / "2_other" / "a.png", size=(64, 128), caption="other")
    (root / "notes").mkdir()
    _image(tmp_path / "reg" / "1_dog" / "r.png", caption="dog")
    plan, _ = load_dataset(root, tmp_path / "reg", None, BucketSettings((64, 64), True, 32, 128, 32))
    assert plan.num_train_images == 4 * 10 + 1 * 2
    assert plan.num_reg_images == 1
    captions = {item.path.name: item.caption for item in plan.train_items}
    assert captions["3.png"] == "sks dog" and captions["0.png"] == "sks dog, photo 0"
    assert any("notes" in warning for warning in plan.warnings)
    # 42 train entries + 42 reg entries per epoch; the tall image has its own bucket.
    counts = plan.bucket_counts()
    assert counts == {(32, 96): 2, (64, 64): 40 + 42}
    assert plan.batches_per_epoch(4) == sum(-(-n // 4) for n in counts.values())
    assert plan.total_steps(4, 2, 3) == -(-plan.batches_per_epoch(4) // 2) * 3
    assert plan.tag_frequency()["10_sks dog"]["sks dog"] == 4 and plan.tag_frequency()["10_sks dog"]["photo 1"] == 1
    assert plan.dataset_dirs()["10_sks dog"] == {"n_repeats": 10, "img_count": 4}


def test_bad_files_are_listed_and_skipped(tmp_path):
    folder = tmp_path / "img" / "5_cat"
    _image(folder / "good.png", caption="cat")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    _image(folder / "latin1.png", caption="caf\xe9".encode("latin-1"))
    _image(folder / "empty.png", caption="  \n")
    plan, _ = load_dataset(tmp_path / "img", None, None, BucketSettings((64, 64)))
    assert [item.path.name for item in plan.items] == ["good.png"]
    reasons = {p.path.name: p.reason for p in plan.problems}
    assert set(reasons) == {"broken.png", "latin1.png", "empty.png"}
    assert "UTF-8" in reasons["latin1.png"] and "empty" in reasons["empty.png"]


def test_pointing_at_the_image_folder_itself_gets_kohyas_hint(tmp_path):
    folder = tmp_path / "img" / "10_sks dog"
    _image(folder / "a.png", caption="sks dog")
    with pytest.raises(DatasetError, match="parent") as error:
        load_dataset(folder, None, None, BucketSettings((64, 64)))
    assert str(tmp_path / "img") in str(error.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="No data found"):
        load_dataset(tmp_path / "empty", None, None, BucketSettings((64, 64)))


def test_dataset_toml_subsets_override_the_folder_convention(tmp_path):
    _image(tmp_path / "pics" / "a.png")
    _image(tmp_path / "pics" / "b.png", caption="tagged, b")
    config = tmp_path / "dataset.toml"
    config.write_text(f"""
[general]
enable_bucket = true
shuffle_caption = true
[[datasets]]
resolution = 64
batch_size = 2
min_bucket_reso = 32
max_bucket_reso = 128
bucket_reso_steps = 32
  [[datasets.subsets]]
  image_dir = '{tmp_path / "pics"}'
  num_repeats = 3
  class_tokens = "zz toy"
  keep_tokens = 1
""", encoding="utf-8")
    plan, options = load_dataset(None, None, config, BucketSettings((512, 512)))
    assert options["batch_size"] == 2 and plan.buckets.resolution == (64, 64) and plan.buckets.enable_bucket
    assert plan.num_train_images == 6
    subset = plan.subsets[0]
    assert subset.keep_tokens == 1 and subset.shuffle_caption is True
    assert sorted(item.caption for item in plan.items) == ["tagged, b", "zz toy"]


def test_loss_history_keeps_kohyas_averages():
    from webui.training.logs import LossHistory, plot

    history = LossHistory(window=2)
    for step, (epoch, loss) in enumerate([(1, 1.0), (1, 3.0), (2, 5.0), (2, 7.0)], start=1):
        history.add(step, epoch, loss, 1e-4, 5e-5)
    assert history.averages == [1.0, 2.0, 4.0, 6.0]
    assert history.epoch_running_averages() == [1.0, 2.0, 5.0, 6.0]
    assert history.epoch_average(2) == 6.0
    assert plot(history).size == (640, 360)
