"""Extra-network cards without a browser: badges, hover text, insert text, filters, set-preview; i18n tables."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.ui.conftest import write_lora
from webui.errors import UserInputError
from webui.models.device import device_config
from webui.paths import Folders
from webui.processing.runtime import build_runtime
from webui.ui.extra_networks import (
    ThumbnailCache,
    filter_cards,
    folder_choices,
    lora_cards,
    lora_insert_text,
    render_cards,
    set_card_preview,
)
from webui.ui.i18n import ZH_CN, locale_head_script, make_i18n


@pytest.fixture()
def runtime(tmp_path):
    folders = Folders(checkpoints=tmp_path / "ckpt", vae=tmp_path / "VAE", lora=(tmp_path / "Lora",),
                      embeddings=tmp_path / "emb", outputs=tmp_path / "out", data=tmp_path)
    return build_runtime(folders, device_config(device="cpu"), hashing=False)


def test_insert_text_uses_alias_weight_and_activation_text():
    assert lora_insert_text("cute", 0.8, "1girl, smile") == "<lora:cute:0.8>, 1girl, smile"
    assert lora_insert_text("cute", 1.0, "  ") == "<lora:cute:1>"


def test_cards_show_every_lora_with_family_badges_and_filters(runtime, tmp_path):
    write_lora(tmp_path / "Lora" / "chars" / "alice_v2.safetensors", "alice", tags={"alice": 40, "blue eyes": 9})
    (tmp_path / "Lora" / "chars" / "alice_v2.json").write_text(json.dumps({"preferred weight": 0.6}))
    write_lora(tmp_path / "Lora" / "big.safetensors", "big", base="sdxl_base_v1-0")
    cards = lora_cards(runtime, default_weight=1.0)
    by_name = {card.name: card for card in cards}
    assert set(by_name) == {"alice_v2", "big"}  # nothing hidden by a version filter
    assert by_name["alice_v2"].insert == "<lora:alice:0.6>"
    assert by_name["big"].insert == "<lora:big:1>"  # no preferred weight: the default LoRA weight
    assert by_name["alice_v2"].badge == "SD1" and by_name["big"].badge == "SDXL"
    assert "Trigger words: alice, blue eyes" in by_name["alice_v2"].hover
    assert folder_choices(cards) == ["All", "chars"]
    assert [c.name for c in filter_cards(cards, "", "chars")] == ["alice_v2"]
    assert [c.name for c in filter_cards(cards, "BLUE eyes", "All")] == ["alice_v2"]
    html = render_cards(cards, "txt2img", ThumbnailCache(), "none")
    assert 'data-insert="&lt;lora:alice:0.6&gt;"' in html and html.count('data-kind="lora"') == 2


def test_set_preview_writes_a_sidecar_picture_the_card_then_shows(runtime, tmp_path):
    write_lora(tmp_path / "Lora" / "pic.safetensors", "pic")
    target = set_card_preview(runtime, "lora", "pic", Image.new("RGB", (64, 64), (255, 0, 0)))
    assert target == tmp_path / "Lora" / "pic.preview.png"
    card = lora_cards(runtime, 1.0)[0]
    assert card.preview == target
    html = render_cards([card], "txt2img", ThumbnailCache(), "none")
    assert "background-image: url('data:image/jpeg;base64," in html
    with pytest.raises(UserInputError):
        set_card_preview(runtime, "lora", "missing", Image.new("RGB", (8, 8)))


def test_chinese_table_and_locale_override():
    i18n = make_i18n()
    assert i18n.translations_dict["zh-CN"]["Generate"] == "生成"
    assert set(i18n.translations_dict["en"]) == set(ZH_CN)
    script = locale_head_script("zh-CN")
    assert "\"zh-CN\"" in script and "changeLocale" in script
