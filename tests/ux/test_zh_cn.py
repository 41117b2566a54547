"""Every user-visible string of the built UI has a Simplified Chinese entry (names such as samplers excepted)."""
from __future__ import annotations

import json
import re
from typing import Any, Iterator

import pytest
from gradio.i18n import I18nData

from scripts.eval_demo_model import DEFAULT_CHECKPOINT, demo_runtime
from webui.processing.hires import known_upscalers
from webui.processing.styles import StyleStore
from webui.sampling.names import SAMPLER_NAMES, SCHEDULE_NAMES
from webui.ui.i18n import LOCALES, ZH_CN

# Component props that hold text a user reads; `value` only where it is a caption (buttons, markdown).
TEXT_PROPS = ("label", "info", "placeholder", "choices", "value")
CAPTION_VALUES = ("button", "markdown", "uploadbutton", "downloadbutton")
I18N_PREFIX = "__i18n__"
PATTERN = re.compile(r"^(\[[a-z_]+\][-_ ]?)+$")  # a file-name pattern such as "[seed]-[prompt_spaces]"


def names_not_translated(runtime) -> set[str]:
    """What users pick by name (samplers, schedule types, upscalers, models, styles, languages, formats)."""
    names = {s.name for s in SAMPLER_NAMES} | {s.label for s in SCHEDULE_NAMES} | set(known_upscalers(runtime))
    names |= {c.name for c in runtime.registry.checkpoints()} | {v.name for v in runtime.registry.vaes()}
    names |= set(StyleStore(runtime.folders.data / "styles.csv").names()) | set(LOCALES)
    return names | {"png", "jpg", "jpeg", "webp", "avif", "SD1", "SD2", "SDXL"}


def _texts(value: Any) -> Iterator[Any]:
    if isinstance(value, (list, tuple)) and value and not isinstance(value, str):
        for item in value:  # choices: (shown name, value) pairs or bare values
            yield item[0] if isinstance(item, (list, tuple)) else item
    elif value is not None:
        yield value


def untranslated(config: dict, names: set[str]) -> dict[str, str]:
    """Text → where it shows, for every visible string that is not a translation key with a zh-CN entry."""
    missing: dict[str, str] = {}
    for component in config["components"]:
        props = component.get("props", {})
        if "sdw-hidden" in (props.get("elem_classes") or []) or props.get("visible") is False:
            continue
        for prop in TEXT_PROPS:
            if prop == "value" and component["type"] not in CAPTION_VALUES:
                continue
            for text in _texts(props.get(prop)):
                if isinstance(text, str) and text.startswith(I18N_PREFIX):
                    text = I18nData(json.loads(text[len(I18N_PREFIX):])["key"])
                if isinstance(text, I18nData):
                    if text.key not in ZH_CN:
                        missing[text.key] = f"{component['type']}.{prop}"
                elif isinstance(text, str) and re.search(r"[A-Za-z]", text) and text not in names \
                        and not PATTERN.match(text):
                    missing[text] = f"{component['type']}.{prop} (not marked for translation)"
    return missing


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from webui.ui.app import build_ui

    runtime = demo_runtime(DEFAULT_CHECKPOINT, tmp_path_factory.mktemp("zh"))
    return build_ui(runtime).get_config_file(), runtime


def test_every_visible_string_has_a_chinese_entry(built):
    config, runtime = built
    missing = untranslated(config, names_not_translated(runtime))
    assert not missing, "\n".join(f"{where}: {text!r}" for text, where in sorted(missing.items()))


def test_the_check_catches_plain_and_unknown_strings(built):
    config, runtime = built
    fake = {"components": [{"type": "textbox", "props": {"label": "Brand new label", "placeholder":
                                                         I18nData("Not in any locale")}},
                           {"type": "dropdown", "props": {"choices": [("Euler", "Euler"), ("Fresh", "Fresh")]}}]}
    assert untranslated(fake, names_not_translated(runtime)) == {
        "Brand new label": "textbox.label (not marked for translation)", "Not in any locale": "textbox.placeholder",
        "Fresh": "dropdown.choices (not marked for translation)"}
