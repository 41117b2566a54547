"""Tag editor core: batch operations, frequency, search, atomic writes with a backup of the old captions."""
from __future__ import annotations

import os

import pytest
from PIL import Image

from webui.errors import UserInputError
from webui.training.tags import (
    Match,
    Position,
    add_tags,
    frequency,
    keep_tokens_prefix,
    load_captions,
    move_to_front,
    remove_tags,
    replace_tag,
    save_captions,
    search,
    set_caption,
)


@pytest.fixture
def folder(tmp_path):
    captions = {"0001": "1girl, long hair, smile", "0002": "1girl, short hair, sks", "0003": None}
    for stem, caption in captions.items():
        Image.new("RGB", (8, 8)).save(tmp_path / f"{stem}.png")
        if caption is not None:
            (tmp_path / f"{stem}.txt").write_text(caption + "\nsecond line is ignored by kohya\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a caption")
    return tmp_path


def test_batch_operations_and_save_with_backup(folder):
    entries = load_captions(folder)
    assert [e.image.name for e in entries] == ["0001.png", "0002.png", "0003.png"]
    assert entries[0].tags == ["1girl", "long hair", "smile"] and entries[2].tags == []
    add_tags(entries, ["sks", "solo"], Position.BACK)
    assert entries[1].tags == ["1girl", "short hair", "sks", "solo"]  # sks not added twice
    move_to_front(entries, ["sks"], add_missing=True)
    assert [e.tags[0] for e in entries] == ["sks", "sks", "sks"]
    remove_tags(entries, ["SMILE"])
    replace_tag(entries, "long hair", "short hair")
    assert entries[0].tags == ["sks", "1girl", "short hair", "solo"]
    replace_tag(entries, "solo", "")
    assert entries[2].tags == ["sks"]
    set_caption(entries[2], "sks, dog ,, outdoors")
    assert entries[2].tags == ["sks", "dog", "outdoors"]
    assert keep_tokens_prefix(entries, 1) == {"sks": 3}

    assert save_captions(entries) == 3
    assert (folder / "0001.txt").read_text(encoding="utf-8") == "sks, 1girl, short hair\n"
    assert (folder / "0003.txt").read_text(encoding="utf-8") == "sks, dog, outdoors\n"
    # The old caption is kept next to the new one; an image that had none gets no backup.
    assert (folder / "0001.txt.bak").read_text(encoding="utf-8").startswith("1girl, long hair, smile")
    assert not (folder / "0003.txt.bak").exists()
    assert not [name for name in os.listdir(folder) if ".partial" in name]
    assert save_captions(load_captions(folder)) == 0  # nothing changed, nothing written


def test_frequency_and_search(folder):
    entries = load_captions(folder)
    assert frequency(entries) == [("1girl", 2), ("long hair", 1), ("short hair", 1), ("sks", 1), ("smile", 1)]
    assert [e.image.stem for e in search(entries, ["1girl", "smile"])] == ["0001"]
    assert [e.image.stem for e in search(entries, ["smile", "sks"], Match.ANY)] == ["0001", "0002"]
    assert [e.image.stem for e in search(entries, [], text="hair")] == ["0001", "0002"]
    assert [e.image.stem for e in search(entries, [], text="0003")] == ["0003"]


def test_failed_write_leaves_the_old_caption_whole(folder, monkeypatch):
    entries = load_captions(folder)
    add_tags(entries[:1], ["new tag"])

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        save_captions(entries)
    monkeypatch.undo()
    assert (folder / "0001.txt").read_text(encoding="utf-8").startswith("1girl, long hair, smile\n")
    assert not [name for name in os.listdir(folder) if ".partial" in name]


def test_caption_that_is_not_utf8_is_a_clear_error(folder):
    (folder / "0002.txt").write_bytes("sks, café".encode("cp1252"))
    with pytest.raises(UserInputError, match="0002.txt is not UTF-8"):
        load_captions(folder)
