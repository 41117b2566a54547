"""Toasts, errors and server-built text reach a Chinese page in Chinese, and every message the code can show has an
entry: the catalogue is checked against the messages read out of the code, and real handlers are called over HTTP."""
from __future__ import annotations

import ast
import json
import re
import uuid
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, cast

import httpx
import pytest
from gradio.context import LocalContext
from PIL import Image

from scripts.eval_demo_model import DEFAULT_CHECKPOINT, demo_runtime
from tests.ui.conftest import free_port
from tests.ux.message_sources import (
    Found,
    has_words,
    lower_layer_messages,
    template_of,
    ui_templates,
    untranslated_toasts,
)
from webui.processing.jobs import JobState
from webui.ui.generation import progress_html
from webui.ui.lora_metadata import training_metadata_html
from webui.ui.messages import (
    CATALOGUES,
    CHINESE,
    ENGLISH,
    LOCALE_COOKIE,
    RUNTIME_CATALOGUES,
    session_locale,
    template_fields,
    translate_message,
    translate_template,
)
from webui.ui.train_dataset_tab import dataset_overview

HAN = re.compile(r"[\u4e00-\u9fff]")


def _missing(found: list[Found]) -> list[str]:
    return sorted({f"{item.where}: {item.template!r}" for item in found if item.template not in CATALOGUES[CHINESE]})


def test_every_toast_in_the_ui_goes_through_the_translator():
    assert untranslated_toasts() == []


def test_every_ui_template_has_a_chinese_entry():
    found = ui_templates()
    assert len(found) > 80  # the scan sees the UI's messages (a broken scan must not pass by finding none)
    assert _missing(found) == []


def test_every_message_lower_layers_can_show_has_a_chinese_entry():
    found = lower_layer_messages()
    assert {"LoRA not found: {name}{hint}", "A style needs a name", "training"} <= {f.template for f in found}
    assert _missing(found) == []


def test_entries_keep_their_placeholders_and_read_as_chinese():
    for english, chinese in RUNTIME_CATALOGUES[CHINESE].items():
        assert set(template_fields(english)) == set(template_fields(chinese)), english
        sample = re.sub(r"\{[^{}]*\}", "«v»", english)
        translated = translate_message(sample, CHINESE)
        assert HAN.search(translated), (english, translated)
        assert translated.count("«v»") >= min(1, sample.count("«v»")), (english, translated)


def test_the_scan_reads_f_strings_as_templates_and_flags_plain_text():
    message = ast.parse("f'No style named {name!r} in {path.name}'", mode="eval").body
    assert template_of(message) == ["No style named {name} in {path_name}"]
    assert not has_words("{a}: {b}") and has_words("{a} is not a folder")
    assert _missing([Found("A brand new message {x}", "here")]) == ["here: 'A brand new message {x}'"]
    new = "A brand new message with no entry"
    assert translate_message(new, CHINESE) == new  # unknown text stays English instead of breaking


def test_variables_are_kept_and_nested_messages_translated():
    assert translate_template("Saved style {name!r}", CHINESE, name="Portrait") == "已保存样式 'Portrait'"
    assert translate_template("Saved style {name!r}", ENGLISH, name="Portrait") == "Saved style 'Portrait'"
    assert translate_message("LoRA cute dog-000017 skipped: LoRA not found: cute dog-000017", CHINESE) == \
        "已跳过 LoRA cute dog-000017：找不到 LoRA：cute dog-000017"
    invalid = "Invalid request: width: must be a multiple of 8 (got 500; try 496 or 504)"
    assert translate_message(invalid, CHINESE) == "无效的参数：width: 必须是 8 的倍数（当前为 500；可改为 496 或 504）"
    assert translate_message(invalid, ENGLISH) == invalid


def test_the_session_language_follows_the_page_cookie_then_the_browser():
    def request(accept: str, cookie: str | None = None):
        return SimpleNamespace(headers={"accept-language": accept}, cookies={LOCALE_COOKIE: cookie} if cookie else {})

    assert session_locale(request("zh-CN,zh;q=0.9")) == CHINESE
    assert session_locale(request("en-US,en;q=0.9,zh-CN;q=0.8")) == ENGLISH
    assert session_locale(request("en-US", "zh-CN")) == CHINESE
    assert session_locale(request("zh-CN", "en")) == ENGLISH
    assert session_locale(request("zh-CN", "Auto")) == CHINESE
    assert session_locale(request("zh-CN", "en-US")) == ENGLISH  # the page shows English (no table for en-US)
    assert session_locale(None) == ENGLISH  # outside a Gradio event (tests, scripts): English


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from webui.ui.app import build_ui, launch_options

    demo = build_ui(demo_runtime(DEFAULT_CHECKPOINT, tmp_path_factory.mktemp("messages")))
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, show_error=True,
                        **launch_options("dark"))
    yield demo, f"http://127.0.0.1:{port}/gradio_api"
    demo.close()


def run_event(app, elem_id: str, trigger: str, data: list, headers: dict[str, str]) -> list[dict]:
    """Run the handler wired to `elem_id`'s `trigger` the way the page does (queue join, then the event stream)."""
    demo, url = app
    ids = {component["props"].get("elem_id"): component["id"] for component in demo.config["components"]}
    dependency = next(d for d in demo.config["dependencies"] if [ids[elem_id], trigger] in map(list, d["targets"]))
    session = uuid.uuid4().hex
    messages = []
    with httpx.Client(headers=headers, timeout=60) as client:
        joined = client.post(f"{url}/queue/join", json={"data": data, "fn_index": dependency["id"],
                                                        "session_hash": session, "trigger_id": ids[elem_id]})
        joined.raise_for_status()
        with client.stream("GET", f"{url}/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    messages.append(json.loads(line[5:]))
                    if messages[-1].get("msg") == "process_completed":
                        break
    return messages


def shown(messages: list[dict]) -> list[str]:
    """What the page would show as toasts, "title: text": log messages (info/warning) and a failed event's error."""
    texts = [f"{m['title']}: {m['log']}" for m in messages if m.get("msg") == "log"]
    return texts + [f"{m['output']['title']}: {m['output']['error']}" for m in messages
                    if m.get("msg") == "process_completed" and not m.get("success")]


CHINESE_PAGE = {"Accept-Language": "zh-CN,zh;q=0.9"}
ENGLISH_PAGE = {"Accept-Language": "en-US,en;q=0.9"}


def test_real_handlers_warn_and_fail_in_chinese_for_a_chinese_page(app):
    warning = shown(run_event(app, "txt2img_sampling", "change", ["Euler Karras Turbo"], CHINESE_PAGE))
    assert warning == ["警告: 未知的采样方法：Euler Karras Turbo"]
    error = shown(run_event(app, "txt2img_style_save", "click", ["", "a cat", "", []], CHINESE_PAGE))
    assert error == ["错误: 样式需要一个名称"]  # raised by processing/styles.py in English, translated where shown
    saved = shown(run_event(app, "txt2img_style_save", "click", ["猫 style", "a cat", "", []], CHINESE_PAGE))
    assert saved == ["提示: 已保存样式 '猫 style'"]


def test_settings_choice_wins_and_english_pages_stay_english(app):
    english = {**CHINESE_PAGE, "Cookie": f"{LOCALE_COOKIE}=en"}
    assert shown(run_event(app, "txt2img_sampling", "change", ["Euler Karras Turbo"], english)) == \
        ["Warning: Unknown sampler: Euler Karras Turbo"]
    assert shown(run_event(app, "txt2img_style_save", "click", ["", "a cat", "", []], ENGLISH_PAGE)) == \
        ["Error: A style needs a name"]
    chosen = {**ENGLISH_PAGE, "Cookie": f"{LOCALE_COOKIE}=zh-CN"}
    assert shown(run_event(app, "txt2img_style_save", "click", ["", "a cat", "", []], chosen)) == \
        ["错误: 样式需要一个名称"]


def test_scan_covers_the_ui_modules():
    # Every UI module that shows text is read: a file the glob misses would let its messages through unchecked.
    scanned = {Path(item.where.split(":")[0]).name for item in ui_templates()}
    assert {"generation.py", "train_tab.py", "lora_metadata.py", "panels.py", "extra_networks.py"} <= scanned


@contextmanager
def page(accept_language: str) -> Iterator[None]:
    """Code below runs as inside a Gradio event from a page whose browser asks for `accept_language`."""
    request = cast(Any, SimpleNamespace(headers={"accept-language": accept_language}, cookies={}))
    token = LocalContext.request.set(request)
    try:
        yield
    finally:
        LocalContext.request.reset(token)


def test_server_built_progress_metadata_and_dataset_text_follow_the_page(tmp_path):
    job = JobState(job_count=4, pass_names=("First pass", "Hires pass"))
    job.begin(2)
    job.step(2, 10)
    metadata = {"ss_output_name": "cute dog", "ss_network_dim": "8", "ss_num_epochs": "10",
                "ss_tag_frequency": json.dumps({"10_dog": {"dog": 20}})}
    subset = tmp_path / "img" / "10_sks dog"
    subset.mkdir(parents=True)
    for name in ("a.png", "b.png"):
        Image.new("RGB", (64, 64)).save(subset / name)
    (subset / "tiny.png").write_bytes(b"not an image")
    with page("zh-CN"):
        progress = progress_html(job, None)
        table = training_metadata_html(metadata)
        overview, _ = dataset_overview(str(tmp_path / "img"), 1, 2)
    assert "第 3/10 步 · 第一阶段 · 批次 2/2 · 预计剩余" in progress
    assert "<th>输出名称</th><td>cute dog</td>" in table and "<th>标签</th><th>次数</th>" in table
    assert "**2 张图片，每轮 20 张（图片数 × 重复次数）" in overview and "已跳过 tiny.png：" in overview
    assert "| 文件夹 | 图片数 |" in overview
    with page("en-US"):  # the same calls for an English page: the English text as before
        assert "Step 3/10 · First pass · Batch 2/2 · ETA" in progress_html(job, None)
        assert "<th>Output name</th>" in training_metadata_html(metadata)
        assert dataset_overview(str(tmp_path / "img"), 1, 2)[0].startswith("**2 images, 20 per epoch")
