"""Files the app rewrites are whole after kill -9, and an unreadable one is replaced by its .bak, with a note."""
from __future__ import annotations

import json
import logging
import random
import signal
import subprocess
import sys
import time

from webui.models.hashing import HashCache
from webui.processing.settings import SettingsStore
from webui.processing.styles import PromptStyle, StyleStore

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]
WRITER = """
import itertools, sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from webui.processing.settings import SettingsStore
store = SettingsStore(Path(sys.argv[1]) / "config.json")
print("ready", flush=True)
for i in itertools.count():
    store.update({"default_steps": 1 + i % 100, "samples_filename_pattern": "[seed]" * (i % 4000)})
"""


def test_config_json_survives_kill_9_during_writes(tmp_path):
    rng = random.Random(7)
    for _ in range(6):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(REPO)], stdout=subprocess.PIPE,
                                  text=True)
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.4))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        data = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))  # whole, never half written
        assert 1 <= data["default_steps"] <= 100
        assert SettingsStore(tmp_path / "config.json").load_note == ""
    assert not list(tmp_path.glob("*.partial*"))  # no temporary files are left behind


def test_an_unreadable_config_json_loads_the_previous_good_copy_and_says_so(tmp_path, caplog):
    store = SettingsStore(tmp_path / "config.json")
    store.update({"default_steps": 33})
    store.update({"default_steps": 34, "samples_format": "webp"})
    (tmp_path / "config.json").write_bytes(b"")  # what an in-place write cut by kill -9 left behind
    with caplog.at_level(logging.WARNING):
        reloaded = SettingsStore(tmp_path / "config.json")
    assert reloaded.current.default_steps == 33  # the copy kept before the last write
    assert "config.json.bak" in reloaded.load_note and "config.json.bak" in caplog.text


def test_one_invalid_value_in_config_json_keeps_every_other_setting(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"default_steps": 44, "emphasis": "Bogus"}), encoding="utf-8")
    loaded = SettingsStore(tmp_path / "config.json").current
    assert loaded.default_steps == 44 and loaded.emphasis == "Original"


def test_styles_csv_and_cache_json_fall_back_to_their_backups(tmp_path, caplog):
    styles = StyleStore(tmp_path / "styles.csv", defaults=tmp_path / "none.csv")
    styles.save(PromptStyle("first", "a {prompt}", ""))
    styles.save(PromptStyle("second", "b", "c"))
    (tmp_path / "styles.csv").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        assert styles.names() == ["first"]
    assert "styles.csv.bak" in caplog.text
    cache = HashCache(tmp_path / "cache.json")
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"x" * 100)
    other = tmp_path / "other.safetensors"
    other.write_bytes(b"y" * 100)
    first = cache.sha256("checkpoint", "model.safetensors", model)
    cache.sha256("checkpoint", "other.safetensors", other)
    (tmp_path / "cache.json").write_bytes(b"{\"hashes\": {")  # truncated
    assert HashCache(tmp_path / "cache.json").cached("checkpoint", "model.safetensors", model) == first
