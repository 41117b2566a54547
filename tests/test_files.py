"""Whole-file writes: the previous file survives a failed write, and the backup is used when the main file is bad."""
import json

import pytest

from webui.files import atomic_target, atomic_write_text, read_with_backup


def test_failed_write_keeps_previous_file_and_leaves_no_partial(tmp_path):
    target = tmp_path / "config.json"
    atomic_write_text(target, '{"a": 1}')
    with pytest.raises(OSError):
        with atomic_target(target) as partial:
            partial.write_text('{"a": 2')
            raise OSError("disk full")
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_backup_is_loaded_when_main_file_is_truncated(tmp_path):
    target = tmp_path / "config.json"
    atomic_write_text(target, '{"a": 1}', keep_backup=True)
    atomic_write_text(target, '{"a": 2}', keep_backup=True)
    assert json.loads((tmp_path / "config.json.bak").read_text()) == {"a": 1}
    target.write_bytes(b"")
    value, note = read_with_backup(target, json.loads)
    assert value == {"a": 1}
    assert "config.json.bak" in note
    target.write_text('{"a": 3}')
    assert read_with_backup(target, json.loads) == ({"a": 3}, None)
