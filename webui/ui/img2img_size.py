"""img2img output size: "Resize to" (the sliders) or "Resize by" (a scale of the input), and 📐 to copy the
input picture's size into the sliders, rounded to multiples of 8 as A1111 does."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
from PIL import Image

from webui.ui.i18n import t, translated_choices
from webui.ui.messages import shown_error, ui_text
from webui.ui.panels import snap8

RESIZE_TO, RESIZE_BY = "Resize to", "Resize by"


@dataclass
class SizeControls:
    kind: gr.Radio
    scale: gr.Slider
    from_image: gr.Button


def size_controls() -> SizeControls:
    """Build the controls (call inside the img2img Generation tab, next to the sampling parameters)."""
    with gr.Row():
        kind = gr.Radio(translated_choices([RESIZE_TO, RESIZE_BY]), value=RESIZE_TO, label=t("Output size"),
                        elem_id="img2img_size_kind", scale=3)
        scale = gr.Slider(0.05, 4, value=1, step=0.05, label=t("Scale"), elem_id="img2img_scale", scale=3)
        from_image = gr.Button("📐", elem_id="img2img_size_from_image", elem_classes="sdw-tool", scale=0,
                               min_width=40)
    return SizeControls(kind, scale, from_image)


def picture_of(mode: str, init_image: Any, sketch: Any, inpaint: Any, upload: Any) -> Image.Image | None:
    """The input picture of the current img2img sub-tab (an editor value is a dict with a background)."""
    value = {"img2img": init_image, "Sketch": sketch, "Inpaint": inpaint, "Inpaint upload": upload}.get(mode)
    if isinstance(value, dict):
        value = value.get("background") or value.get("composite")
    return value if isinstance(value, Image.Image) else None


def scaled_size(picture: Image.Image, scale: float) -> tuple[int, int]:
    """`picture`'s size times `scale`, each side rounded to a multiple of 8 (64..2048)."""
    return snap8(picture.width * scale), snap8(picture.height * scale)


def wire_size_controls(controls: SizeControls, mode: gr.State, pictures: list, width: gr.Slider,
                       height: gr.Slider) -> None:
    """📐: the sliders take the input picture's own size (scale 1)."""

    def from_image(current_mode, *values):
        picture = picture_of(current_mode, *values)
        if picture is None:
            raise shown_error(ui_text("Upload an image first"))
        return scaled_size(picture, 1.0)

    controls.from_image.click(from_image, [mode, *pictures], [width, height], show_progress="hidden",
                              concurrency_limit=None)


def resize_by_values(data: dict, controls: SizeControls, picture: Image.Image) -> dict[str, int]:
    """The width/height a "Resize by" choice gives for `picture`; {} when the sliders ("Resize to") decide."""
    if data[controls.kind] != RESIZE_BY:
        return {}
    width, height = scaled_size(picture, float(data[controls.scale]))
    return {"width": width, "height": height}
