"""kill -9 rounds for bench/soak.py: the server itself is killed while it rewrites its files, then restarted on them.

Each round starts app.py (hashing on) and keeps it busy rewriting the files it owns, through its own routes: POST
/options (config.json), checkpoint hashing after the loaded checkpoint's mtime changed (cache.json) and, when the
WebUI is up, the Styles "Save" event (styles.csv). Once every writer has had a write acknowledged, the server gets
SIGKILL the moment one of its temporary files appears (it is inside a write); temporary files left behind show the
kill landed there. The next start must read every file by itself (no backup copy needed) and load what the last
acknowledged write stored. LoRA sidecars are not covered: no API route writes them, and the WebUI's metadata "Save"
event cannot be driven over Gradio's HTTP API (Gradio fails to encode its result for API callers, which then blocks
that event's queue).
"""
from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

import requests

from tests.api.server import DEMO, Server, start_server, write_demo_lora
from webui.files import PARTIAL_SUFFIX, read_with_backup
from webui.models.hashing import HashCache
from webui.processing.settings import SettingsStore
from webui.processing.styles import StyleStore

LORA = "soak-lora"
STYLE_FIELDS = ["name", "text", "negative_text", "chosen"]


def gradio_endpoint(url: str, parameters: list[str]) -> str:
    """The API name Gradio gave the event whose inputs are `parameters` (the UI names no API for these events)."""
    info = requests.get(url + "/gradio_api/info", timeout=600).json()  # slow to build on a busy CPU
    for name, endpoint in info["named_endpoints"].items():
        if [p.get("parameter_name") for p in endpoint["parameters"]] == parameters:
            return name
    raise RuntimeError(f"no Gradio event takes {parameters}")


def call_gradio(session: requests.Session, url: str, endpoint: str, data: list) -> None:
    """Run a Gradio event over its HTTP API and wait for its stream to end.

    The stream's last message is not proof of the write (Gradio fails to encode these events' translated labels
    for API callers after the handler has run), so callers check the file itself.
    """
    started = session.post(f"{url}/gradio_api/call{endpoint}", json={"data": data}, timeout=60)
    started.raise_for_status()
    session.get(f"{url}/gradio_api/call{endpoint}/{started.json()['event_id']}", timeout=60)


class Writers:
    """One thread per rewritten file, each writing in a loop through the server; `acked` is the last write the
    server confirmed for each file (its sequence number), `writing` the one in flight."""

    def __init__(self, server: Server, checkpoint: Path, rng: random.Random, style_save: str | None) -> None:
        self.url, self.root, self.checkpoint, self.rng = server.url, server.root, checkpoint, rng
        self.acked: dict[str, int] = {}
        self.writing: dict[str, int] = {}
        self.stop = threading.Event()
        loops: dict[str, Callable[[requests.Session, int], bool]] = {"config.json": self._options,
                                                                     "cache.json": self._hash}
        if style_save is not None:  # styles are saved by a WebUI event only (A1111 has no API route for it)
            self.style_save = style_save
            loops["styles.csv"] = self._style
        self.names = tuple(loops)
        self.threads = [threading.Thread(target=self._loop, args=(name, write), daemon=True)
                        for name, write in loops.items()]

    def _pad(self) -> str:
        return "x" * self.rng.randint(0, 20_000)  # files of up to ~1 MB: each write takes a while

    def _options(self, session: requests.Session, i: int) -> bool:
        body: dict[str, Any] = {"samples_filename_pattern": f"soak-{i}-{self._pad()}", "default_steps": 1 + i % 150}
        return session.post(self.url + "/sdapi/v1/options", json=body, timeout=60).status_code == 200

    def _style(self, session: requests.Session, i: int) -> bool:
        call_gradio(session, self.url, self.style_save, [f"style{i % 40}", f"soak-{i}-{self._pad()}", "n", []])
        # Acknowledged once the renamed file holds it (the handler returned after the rename).
        rows = _style_rows((self.root / "data" / "styles.csv").read_bytes())
        return any(row[0] == f"style{i % 40}" and _sequence(row[1]) == i for row in rows)

    def _hash(self, session: requests.Session, i: int) -> bool:
        # A new mtime makes the cached hash stale: the next look at the loaded model's hash recomputes and stores it.
        os.utime(self.checkpoint, ns=(i * 1_000_000_000, i * 1_000_000_000))
        answer = session.get(self.url + "/sdapi/v1/options", timeout=60)
        return answer.status_code == 200 and bool(answer.json().get("sd_checkpoint_hash"))

    def _loop(self, name: str, write: Callable[[requests.Session, int], bool]) -> None:
        session = requests.Session()
        i = self.acked.get(name, 0)
        while not self.stop.is_set():
            i += 1
            self.writing[name] = i
            try:
                if write(session, i):
                    self.acked[name] = i
            except (requests.RequestException, ValueError, KeyError, OSError):
                if self.stop.is_set():
                    return  # the server is gone
                time.sleep(0.05)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def wait_for_every_writer(self, round_acked: dict[str, int], timeout: float = 120) -> None:
        """Until each writer has had one more write acknowledged than at the start of this round."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.acked.get(name, 0) > round_acked.get(name, 0) for name in self.names):
                return
            time.sleep(0.02)
        raise RuntimeError(f"writers stalled: {self.acked}")

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(90)


def _sequence(text: str) -> int:
    """The write number a value carries (`soak-<i>-…`), 0 for the initial file."""
    return int(text.split("-")[1]) if text.startswith("soak-") else 0


def _readable(path: Path, parse: Callable[[bytes], object]) -> bool:
    """The file itself parses (the app's reader did not need the backup copy)."""
    _, note = read_with_backup(path, parse)
    return note is None


def _style_rows(raw: bytes) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"))))
    if not rows or any(len(row) != len(rows[0]) for row in rows):
        raise ValueError("ragged styles.csv")
    return rows


def check_files(root: Path, server: Server, acked: dict[str, int], checkpoint: str) -> dict[str, int]:
    """After a restart: each file parses by itself, the restarted server serves what is in it, and no write it had
    acknowledged before the kill is missing. Returns counts of problems per kind."""
    data = root / "data"
    problems = {"unreadable": 0, "acked_write_lost": 0, "not_loaded": 0}
    for path, parse in ((data / "config.json", json.loads), (data / "styles.csv", _style_rows),
                        (data / "cache.json", lambda raw: json.loads(raw)["hashes"])):
        problems["unreadable"] += not _readable(path, parse)
    # Everything on disk is read before the restarted server is asked anything (asking it may rewrite cache.json).
    pattern = SettingsStore(data / "config.json").current.samples_filename_pattern
    styles = {style.name: style.prompt for style in StyleStore(data / "styles.csv").all()}
    entry = HashCache(data / "cache.json")._entries.get(f"checkpoint/{checkpoint}", {})
    newest_style = max(map(_sequence, styles.values()), default=0)
    problems["acked_write_lost"] += sum((_sequence(pattern) < acked.get("config.json", 0),
                                         newest_style < acked.get("styles.csv", 0),
                                         entry.get("mtime", 0) < acked.get("cache.json", 0)))
    # The restarted server serves what the files hold (the hash from cache.json: the checkpoint has not changed).
    listed = requests.get(server.url + "/sdapi/v1/sd-models", timeout=60)
    if listed.status_code != 200 or not isinstance(listed.json(), list):
        raise RuntimeError(f"/sd-models after the restart answered {listed.status_code}: {listed.text[:300]}")
    models = {m["title"].split(" [")[0]: m["hash"] for m in listed.json()}
    current = entry.get("mtime") == (root / "ckpt" / checkpoint).stat().st_mtime  # else stale: the app re-hashes
    problems["not_loaded"] += current and models.get(checkpoint) != entry["sha256"][:10]
    served = requests.get(server.url + "/sdapi/v1/options", timeout=60).json()
    problems["not_loaded"] += served["samples_filename_pattern"] != pattern
    served_styles = requests.get(server.url + "/sdapi/v1/prompt-styles", timeout=60).json()
    problems["not_loaded"] += {s["name"]: s["prompt"] for s in served_styles} != styles
    return problems


def _kill_while_writing(server: Server, root: Path, rng: random.Random, patience: float = 10.0) -> None:
    """SIGKILL the server the moment one of its temporary files appears (it is inside a write), after a random
    delay; if none shows up within `patience` seconds, at that moment anyway."""
    time.sleep(rng.uniform(0.0, 0.3))
    folders = [root / "data", root / "lora"]
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if any(PARTIAL_SUFFIX in entry.name for folder in folders for entry in os.scandir(folder)):
            break
    os.kill(server.process.pid, signal.SIGKILL)


def _started(root: Path, flags: tuple[str, ...], patience: float = 300.0) -> Server:
    """Start the server and wait until its API answers 200: with the WebUI, Gradio serves (404s) before the API
    routes are attached, and `start_server` counts any answer as up."""
    server = start_server(root, *flags, hashing=True)
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            if requests.get(server.url + "/sdapi/v1/sd-models", timeout=30).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"the API did not come up within {patience:.0f} s:\n{server.tail()}")


def kill_rounds(rounds: int, rng: random.Random, folder: Path, with_ui: bool = True) -> dict:
    """`rounds` kill -9s of a busy server, each followed by a restart and a check of every file it rewrites.

    Without `with_ui` the server is API-only (much faster to start) and styles.csv is not written.
    """
    root = folder / "kills"
    write_demo_lora(root / "lora" / f"{LORA}.safetensors")
    (root / "ckpt").mkdir(parents=True, exist_ok=True)
    for stem in ("demo-shapes", "other"):  # copies, not links: the loaded one's mtime changes for every hash write
        for suffix in (".safetensors", ".json"):
            shutil.copyfile(DEMO.with_suffix(suffix), (root / "ckpt" / stem).with_suffix(suffix))
    totals: dict[str, Any] = {"kill_rounds": 0, "kills_mid_write": 0, "partials_left": 0, "unreadable": 0,
                              "acked_write_lost": 0, "not_loaded": 0, "writes_acked": 0}
    files_mid_write: dict[str, int] = {}
    flags = ("--api",) if with_ui else ("--api", "--nowebui")
    server = _started(root, flags)
    style_save = gradio_endpoint(server.url, STYLE_FIELDS) if with_ui else None
    loaded = requests.get(server.url + "/sdapi/v1/options", timeout=600).json()["sd_model_checkpoint"]
    checkpoint = root / "ckpt" / loaded.split(" [")[0]
    acked: dict[str, int] = {}
    try:
        for round_no in range(rounds):
            writers = Writers(server, checkpoint, rng, style_save)
            writers.acked = dict(acked)
            writers.start()
            writers.wait_for_every_writer(acked)
            _kill_while_writing(server, root, rng)
            server.process.wait()
            writers.join()
            partials = [p for p in root.rglob(f"*{PARTIAL_SUFFIX}.*")]
            totals["kill_rounds"] += 1
            totals["kills_mid_write"] += bool(partials)
            totals["partials_left"] += len(partials)
            for partial in partials:
                key = partial.name.split(PARTIAL_SUFFIX)[0]
                files_mid_write[key] = files_mid_write.get(key, 0) + 1
            totals["writes_acked"] += sum(writers.acked.values()) - sum(acked.values())
            acked = dict(writers.acked)
            server = _started(root, flags)
            for kind, count in check_files(root, server, acked, checkpoint.name).items():
                totals[kind] += count
            print(f"  kill round {round_no + 1}/{rounds}: {len(partials)} temp files left "
                  f"({', '.join(sorted(p.name.split(PARTIAL_SUFFIX)[0] for p in partials)) or 'between writes'}); "
                  f"so far {totals}", flush=True)
    finally:
        server.stop()
    totals["files_mid_write"] = files_mid_write
    totals["kill_server"] = "WebUI + API" if with_ui else "API only"
    return totals
