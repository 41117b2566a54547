"""PNG Info: read the parameters stored in any A1111 (or our) image and send them to txt2img."""
from __future__ import annotations

import html

import gradio as gr
from PIL import Image, UnidentifiedImageError

from webui.processing.png_info import read_png_parameters
from webui.ui.i18n import t
from webui.ui.messages import shown_error, ui_text


def read_image_info(path: str | None) -> tuple[str, str]:
    """(infotext, html) for an uploaded file; an unreadable file gives a message, not an exception."""
    if not path:
        return "", ""
    try:
        with Image.open(path) as image:
            infotext, items = read_png_parameters(image)
    except (OSError, UnidentifiedImageError) as error:
        raise shown_error(ui_text("Cannot read this file as an image: {error}", error=error)) from None
    # The parameters go to the textbox below; the HTML lists the image's other text items, as A1111 does.
    parts = [f"<div><b>{html.escape(str(key))}</b><pre class='sdw-pre'>{html.escape(str(value))}</pre></div>"
             for key, value in items.items() if isinstance(value, (str, int, float))]
    if not parts and not infotext:
        parts.append(f"<div class='sdw-empty'>{ui_text('Nothing found in this image.')}</div>")
    return infotext or "", "".join(parts)


def build_pnginfo() -> tuple[gr.Image, gr.Textbox, gr.Button, gr.Button]:
    with gr.Row():
        with gr.Column():
            image = gr.Image(label=t("Source"), type="filepath", sources=["upload", "clipboard"],
                             elem_id="pnginfo_image", height=420)
        with gr.Column():
            info_html = gr.HTML(elem_id="pnginfo_html")
            infotext = gr.Textbox(label=t("Parameters"), lines=6, interactive=False, elem_id="pnginfo_generation_info")
            with gr.Row():
                to_txt2img = gr.Button(t("Send to txt2img"), elem_id="pnginfo_send_to_txt2img")
                to_img2img = gr.Button(t("Send to img2img"), elem_id="pnginfo_send_to_img2img")
    image.change(read_image_info, [image], [infotext, info_html], concurrency_limit=None)
    return image, infotext, to_txt2img, to_img2img
