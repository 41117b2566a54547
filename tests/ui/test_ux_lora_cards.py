"""LoRA cards as in A1111: weight and trigger words on click, Ctrl+Up/Down edit attention, edit/view metadata."""
from __future__ import annotations

import json

from tests.ui.conftest import screenshot, write_lora

CARD = "#txt2img_lora_cards .sdw-card[data-name={}]"


def _prompt_value(page) -> str:
    return page.locator("#txt2img_prompt textarea").input_value()


def _wait_prompt(page, expected: str) -> None:
    page.wait_for_function(f"() => document.querySelector('#txt2img_prompt textarea')?.value === {expected!r}",
                           timeout=10_000)


def test_cards_insert_edit_attention_and_metadata_dialog(page, ui_root, ui_runtime):
    lora = write_lora(ui_root / "Lora" / "editme.safetensors", "edit_me", tags={"dog": 3, "cute": 9, "park": 1})
    sidecar = lora.with_suffix(".json")
    sidecar.write_text(json.dumps({"notes": "keep me", "custom key": 5}), encoding="utf-8")
    before = ui_runtime.settings.current.extra_networks_default_multiplier
    try:
        ui_runtime.settings.update({"extra_networks_default_multiplier": 0.6})
        page.locator("button[role=tab]:text-is('Lora')").first.click()
        page.locator("#txt2img_lora_refresh").click()
        card = page.locator(CARD.format("editme"))
        card.wait_for()
        page.locator("#txt2img_prompt textarea").fill("a circle")
        card.click()  # no preferred weight: the "default multiplier" setting
        _wait_prompt(page, "a circle, <lora:edit_me:0.6>")

        box = page.locator("#txt2img_prompt textarea")
        box.evaluate("b => { b.focus(); b.setSelectionRange(b.value.length - 3, b.value.length - 3); }")
        box.press("Control+ArrowUp")  # the tag under the cursor, by the extra-networks step
        _wait_prompt(page, "a circle, <lora:edit_me:0.65>")
        box.press("Control+ArrowDown")
        box.press("Control+ArrowDown")
        _wait_prompt(page, "a circle, <lora:edit_me:0.55>")
        box.evaluate("b => b.setSelectionRange(2, 8)")  # "circle" selected
        box.press("Control+ArrowUp")
        _wait_prompt(page, "a (circle:1.1), <lora:edit_me:0.55>")
        box.press("Control+ArrowUp")
        _wait_prompt(page, "a (circle:1.2), <lora:edit_me:0.55>")
        box.evaluate("b => b.setSelectionRange(5, 5)")  # cursor inside the parentheses
        box.press("Control+ArrowDown")
        box.press("Control+ArrowDown")
        _wait_prompt(page, "a circle, <lora:edit_me:0.55>")

        # Edit metadata: the dialog shows the sidecar and the ss_* training metadata with sorted tag counts.
        card.hover()
        card.locator(".sdw-edit-metadata").click()
        page.locator("#txt2img_lora_edit").first.wait_for(state="visible")
        page.wait_for_function("() => (document.querySelector('#txt2img_lora_edit_notes textarea')?.value) "
                               "=== 'keep me'")
        metadata = page.locator("#txt2img_lora_metadata")
        facts = dict(zip(metadata.locator("table").first.locator("th").all_inner_texts(),
                         metadata.locator("table").first.locator("td").all_inner_texts(), strict=True))
        assert facts["Network dim"] == "4" and facts["Network alpha"] == "2"
        assert facts["Base model version"] == "sd_v1"
        rows = metadata.locator("table.sdw-tags tbody tr").all_inner_texts()
        assert [row.split("\t") for row in rows] == [["cute", "9"], ["dog", "3"], ["park", "1"]]
        page.locator("#txt2img_lora_edit_activation textarea").fill("cute dog")
        weight = page.locator("#txt2img_lora_edit_weight input[type=number]")
        weight.fill("0.7")
        weight.press("Enter")
        page.locator("#txt2img_lora_edit_description textarea").fill("a test LoRA")
        screenshot(page, "lora-metadata-dialog")
        page.locator("#txt2img_lora_edit_save").click()
        page.locator("#txt2img_lora_edit").first.wait_for(state="hidden")
        saved = json.loads(sidecar.read_text(encoding="utf-8"))
        assert saved["activation text"] == "cute dog" and saved["preferred weight"] == 0.7
        assert saved["description"] == "a test LoRA"
        assert saved["notes"] == "keep me" and saved["custom key"] == 5  # other keys survive
        assert not list(sidecar.parent.glob("*.partial*"))

        page.locator("#txt2img_prompt textarea").fill("")
        page.locator(CARD.format("editme")).click()  # the preferred weight and activation text now
        _wait_prompt(page, "<lora:edit_me:0.7>, cute dog")
    finally:
        ui_runtime.settings.update({"extra_networks_default_multiplier": before})
        lora.unlink()
        sidecar.unlink(missing_ok=True)
        ui_runtime.loras.scan()
