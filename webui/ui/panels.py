"""Blocks shared by txt2img and img2img: prompts with token counters, buttons, styles, sampler/size/seed, output."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from webui.conditioning import count_tokens
from webui.errors import UserInputError
from webui.processing.settings import Settings
from webui.processing.styles import PromptStyle, StyleStore
from webui.sampling.names import SAMPLER_NAMES, SCHEDULE_NAMES, UnknownSamplerError, split_legacy_name
from webui.ui.i18n import t, translated_choices
from webui.ui.messages import show_info, show_warning, shown_error, ui_error, ui_text

SEED_PATTERN = re.compile(r"(?:^|, )Seed: (-?\d+)")


@dataclass
class PromptArea:
    prompt: gr.Textbox
    negative: gr.Textbox
    generate: gr.Button
    interrupt: gr.Button
    skip: gr.Button
    styles: gr.Dropdown
    progress: gr.HTML


@dataclass
class SamplingParams:
    sampler: gr.Dropdown
    scheduler: gr.Dropdown
    steps: gr.Slider
    width: gr.Slider
    height: gr.Slider
    batch_count: gr.Slider
    batch_size: gr.Slider
    cfg_scale: gr.Slider
    seed: gr.Number
    subseed: gr.Number
    subseed_strength: gr.Slider
    seed_resize_w: gr.Slider
    seed_resize_h: gr.Slider
    recycle: gr.Button
    extra: gr.Checkbox | None = None  # shows the variation-seed row


@dataclass
class OutputArea:
    gallery: gr.Gallery
    infotext: gr.Textbox
    infotexts: gr.State
    selected: gr.State
    to_img2img: gr.Button
    to_inpaint: gr.Button
    to_extras: gr.Button


def token_counter_html(text: str, steps: float | None, negative: bool = False) -> str:
    """A1111's "tokens/limit" corner counter; turns amber once a prompt spills into another 75-token chunk."""
    try:
        tokens, limit = count_tokens(text or "", int(steps or 20), negative=negative)
    except Exception:  # a half-typed prompt may not parse yet; the counter must not raise while typing
        return "<span>?/75</span>"
    over = " class='over'" if tokens > 75 else ""
    return f"<span{over}>{tokens}/{limit}</span>"


def prompt_area(prefix: str, style_store: StyleStore) -> PromptArea:
    with gr.Row(elem_id=f"{prefix}_toprow"):
        with gr.Column(scale=6):
            with gr.Column(elem_classes="sdw-prompt-wrap"):
                prompt = gr.Textbox(label=t("Prompt"), lines=3, elem_id=f"{prefix}_prompt",
                                    elem_classes="sdw-prompt",
                                    placeholder=t("Prompt (press Ctrl+Enter to generate)"))
                prompt_tokens = gr.HTML("<span>0/75</span>", elem_classes="sdw-token-counter",
                                        elem_id=f"{prefix}_token_counter")
            with gr.Column(elem_classes="sdw-prompt-wrap"):
                negative = gr.Textbox(label=t("Negative prompt"), lines=2, elem_id=f"{prefix}_neg_prompt",
                                      elem_classes="sdw-prompt", placeholder=t("Negative prompt"))
                negative_tokens = gr.HTML("<span>0/75</span>", elem_classes="sdw-token-counter",
                                          elem_id=f"{prefix}_negative_token_counter")
        with gr.Column(scale=2, min_width=220):
            generate = gr.Button(t("Generate"), variant="primary", elem_id=f"{prefix}_generate",
                                 elem_classes="sdw-generate-box")
            with gr.Row():
                interrupt = gr.Button(t("Interrupt"), elem_id=f"{prefix}_interrupt", size="sm", min_width=70)
                skip = gr.Button(t("Skip"), elem_id=f"{prefix}_skip", size="sm", min_width=60)
            with gr.Row():
                styles = gr.Dropdown(style_store.names(), value=[], multiselect=True, label=t("Styles"),
                                     elem_id=f"{prefix}_styles", scale=5)
                apply_styles = gr.Button("⇩", elem_classes="sdw-tool", elem_id=f"{prefix}_style_apply",
                                         scale=0, min_width=40)
            with gr.Accordion(t("Edit styles"), open=False):
                style_name = gr.Textbox(label=t("Style name"), elem_id=f"{prefix}_style_name")
                with gr.Row():
                    save_style = gr.Button(t("Save style"), elem_id=f"{prefix}_style_save")
                    delete_style = gr.Button(t("Delete style"), elem_id=f"{prefix}_style_delete")
            progress = gr.HTML("", elem_id=f"{prefix}_progress")

    quiet: dict[str, Any] = dict(show_progress="hidden", concurrency_limit=None, trigger_mode="always_last")
    prompt.change(lambda text: token_counter_html(text, 20), [prompt], [prompt_tokens], **quiet)
    negative.change(lambda text: token_counter_html(text, 20, negative=True), [negative], [negative_tokens], **quiet)

    def on_apply(names, text, negative_text):
        try:
            text, negative_text = style_store.apply(list(names or []), text, negative_text)
        except UserInputError as error:
            raise ui_error(error) from None
        return text, negative_text, []

    apply_styles.click(on_apply, [styles, prompt, negative], [prompt, negative, styles], show_progress="hidden",
                       concurrency_limit=None)

    def on_save(name, text, negative_text, chosen):
        try:
            style_store.save(PromptStyle(name or "", text, negative_text))
        except UserInputError as error:
            raise ui_error(error) from None
        show_info(ui_text("Saved style {name!r}", name=name.strip()))
        return gr.update(choices=style_store.names(), value=chosen)

    def on_delete(name, chosen):
        try:
            style_store.delete((name or "").strip())
        except UserInputError as error:
            raise ui_error(error) from None
        names = style_store.names()
        return gr.update(choices=names, value=[c for c in (chosen or []) if c in names])

    save_style.click(on_save, [style_name, prompt, negative, styles], [styles], concurrency_limit=None)
    delete_style.click(on_delete, [style_name, styles], [styles], concurrency_limit=None)
    styles.focus(lambda chosen: gr.update(choices=style_store.names(), value=chosen), [styles], [styles],
                 show_progress="hidden", concurrency_limit=None)
    return PromptArea(prompt, negative, generate, interrupt, skip, styles, progress)


AUTOMATIC = ("Automatic",)  # the one schedule-type label that is a word, not a name


def sampling_params(prefix: str, settings: Settings, size: tuple[int, int]) -> SamplingParams:
    with gr.Row():
        # Typing filters the list; a typed or pasted legacy name ("DPM++ 2S a Karras") is split by on_sampler_typed.
        sampler = gr.Dropdown([s.name for s in SAMPLER_NAMES], value=settings.default_sampler_name,
                              label=t("Sampling method"), elem_id=f"{prefix}_sampling", filterable=True,
                              allow_custom_value=True)
        scheduler = gr.Dropdown(translated_choices([s.label for s in SCHEDULE_NAMES], AUTOMATIC),
                                value=settings.default_scheduler,
                                label=t("Schedule type"), elem_id=f"{prefix}_scheduler")
    steps = gr.Slider(1, 150, value=settings.default_steps, step=1, label=t("Sampling steps"),
                      elem_id=f"{prefix}_steps")
    with gr.Row():
        with gr.Column(scale=4):
            width = gr.Slider(64, 2048, value=size[0], step=8, label=t("Width"),
                              elem_id=f"{prefix}_width")
            height = gr.Slider(64, 2048, value=size[1], step=8, label=t("Height"),
                               elem_id=f"{prefix}_height")
        with gr.Column(scale=0, min_width=48):
            swap = gr.Button("⇅", elem_classes="sdw-tool", elem_id=f"{prefix}_res_switch_btn", min_width=40)
            lock = gr.Checkbox(label="🔒", value=False, elem_id=f"{prefix}_lock_ratio", min_width=40)
        with gr.Column(scale=2, min_width=140):
            batch_count = gr.Slider(1, 100, value=1, step=1, label=t("Batch count"), elem_id=f"{prefix}_batch_count")
            batch_size = gr.Slider(1, 8, value=1, step=1, label=t("Batch size"), elem_id=f"{prefix}_batch_size")
    cfg_scale = gr.Slider(1.0, 30.0, value=settings.default_cfg_scale, step=0.5, label=t("CFG Scale"),
                          elem_id=f"{prefix}_cfg_scale")
    with gr.Row():
        seed = gr.Number(value=-1, precision=0, label=t("Seed"), elem_id=f"{prefix}_seed", scale=6)
        dice = gr.Button("⚄", elem_classes="sdw-tool", elem_id=f"{prefix}_random_seed", scale=0, min_width=40)
        recycle = gr.Button("♻", elem_classes="sdw-tool", elem_id=f"{prefix}_reuse_seed", scale=0, min_width=40)
        extra = gr.Checkbox(label=t("Extra"), value=False, elem_id=f"{prefix}_subseed_show", scale=1, min_width=80)
    with gr.Row(visible=False) as extra_row:
        subseed = gr.Number(value=-1, precision=0, label=t("Variation seed"), elem_id=f"{prefix}_subseed")
        subseed_strength = gr.Slider(0, 1, value=0, step=0.01, label=t("Variation strength"),
                                     elem_id=f"{prefix}_subseed_strength")
        seed_resize_w = gr.Slider(0, 2048, value=0, step=8, label=t("Resize seed from width"))
        seed_resize_h = gr.Slider(0, 2048, value=0, step=8, label=t("Resize seed from height"))
    quick: dict[str, Any] = dict(show_progress="hidden", concurrency_limit=None)
    sampler.change(on_sampler_typed, [sampler], [sampler, scheduler], **quick)
    swap.click(lambda w, h: (h, w), [width, height], [width, height], **quick)
    dice.click(lambda: -1, None, [seed], **quick)
    extra.change(lambda on: gr.update(visible=on), [extra], [extra_row], **quick)
    ratio = gr.State(1.0)
    lock.change(lambda on, w, h: (w / h) if on and h else 1.0, [lock, width, height], [ratio], **quick)
    # gr.skip() when unlocked: echoing the other side's value back would race with the user typing into it.
    width.release(lambda on, w, r: snap8(w / r) if on else gr.skip(), [lock, width, ratio], [height], **quick)
    height.release(lambda on, h, r: snap8(h * r) if on else gr.skip(), [lock, height, ratio], [width], **quick)
    # ♻️ is wired by the tab, which knows its output area's infotext
    return SamplingParams(sampler, scheduler, steps, width, height, batch_count, batch_size, cfg_scale, seed, subseed,
                          subseed_strength, seed_resize_w, seed_resize_h, recycle, extra)


def on_sampler_typed(text: str | None):
    """A known name stays; an A1111 legacy name becomes its sampler and schedule type; anything else warns."""
    names = {s.name for s in SAMPLER_NAMES}
    if not text or text in names:
        return gr.skip(), gr.skip()
    try:
        sampler, schedule = split_legacy_name(text)
    except UnknownSamplerError:
        show_warning(ui_text("Unknown sampler: {name}", name=text))
        return gr.skip(), gr.skip()
    return sampler.name, (schedule.label if schedule is not None else gr.skip())


def snap8(value: float) -> int:
    return int(min(2048, max(64, round(value / 8) * 8)))


def seed_from_infotext(text: str) -> int:
    """♻️: the seed of the shown image, or -1 when there is none yet."""
    match = SEED_PATTERN.search(text or "")
    return int(match.group(1)) if match else -1


def output_area(prefix: str) -> OutputArea:
    gallery = gr.Gallery(label=t("Output"), columns=2, height=480, format="png", elem_id=f"{prefix}_gallery",
                         interactive=False, type="pil", buttons=["download", "fullscreen"], object_fit="contain")
    with gr.Row():
        to_img2img = gr.Button(t("Send to img2img"), elem_id=f"{prefix}_send_to_img2img", size="sm")
        to_inpaint = gr.Button(t("Send to inpaint"), elem_id=f"{prefix}_send_to_inpaint", size="sm")
        to_extras = gr.Button(t("Send to extras"), elem_id=f"{prefix}_send_to_extras", size="sm")
    infotext = gr.Textbox(label=t("Generation info"), lines=4, interactive=False, elem_id=f"{prefix}_infotext",
                          buttons=["copy"])
    infotexts = gr.State([])
    selected = gr.State(0)

    def on_select(texts, event: gr.SelectData):
        index = event.index if isinstance(event.index, int) else 0
        return index, (texts[index] if texts and index < len(texts) else gr.skip())

    gallery.select(on_select, [infotexts], [selected, infotext], show_progress="hidden", concurrency_limit=None)
    return OutputArea(gallery, infotext, infotexts, selected, to_img2img, to_inpaint, to_extras)


def selected_image(gallery_value, index: int):
    """The PIL image the user picked in a gallery (the first one when nothing was picked)."""
    if not gallery_value:
        raise shown_error(ui_text("Generate or pick an image first"))
    index = index if 0 <= (index or 0) < len(gallery_value) else 0
    item = gallery_value[index]
    image = item[0] if isinstance(item, (tuple, list)) else getattr(item, "image", item)
    if isinstance(image, Image.Image):
        return image
    path = getattr(image, "path", None) or (image.get("path") if isinstance(image, dict) else image)
    if not isinstance(path, (str, Path)):
        raise shown_error(ui_text("Generate or pick an image first"))
    with Image.open(path) as opened:
        return opened.copy()
