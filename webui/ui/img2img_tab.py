"""The img2img tab (img2img, sketch, inpaint with a brush mask, inpaint upload, batch) over processing.img2img."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr
from PIL import Image, ImageChops

from webui.errors import UserInputError
from webui.processing.img2img import img2img
from webui.processing.img2img_batch import BatchFolders, img2img_batch
from webui.processing.request import INPAINTING_FILLS, RESIZE_MODES, Img2ImgRequest, make_request
from webui.processing.runtime import Runtime
from webui.processing.styles import StyleStore
from webui.ui.extra_networks import ThumbnailCache
from webui.ui.generation import SessionJobs, stream_generation
from webui.ui.i18n import t, translated_choices
from webui.ui.img2img_size import resize_by_values, size_controls, wire_size_controls
from webui.ui.interrogate_button import add_interrogate_button
from webui.ui.messages import ui_error
from webui.ui.networks_panel import card_actions, network_tabs
from webui.ui.panels import (
    OutputArea,
    PromptArea,
    SamplingParams,
    output_area,
    prompt_area,
    sampling_params,
    seed_from_infotext,
)
from webui.ui.result_files import is_local
from webui.ui.scripts_panel import scripts_panel
from webui.ui.txt2img_tab import TopBar, request_values, wire_job_buttons

MODES = ("img2img", "Sketch", "Inpaint", "Inpaint upload", "Batch")
MASK_MODES = ("Inpaint masked", "Inpaint not masked")
INPAINT_AREAS = ("Whole picture", "Only masked")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass
class Img2ImgTab:
    prompts: PromptArea
    params: SamplingParams
    output: OutputArea
    mode_tabs: gr.Tabs
    init_image: gr.Image
    sketch: gr.ImageEditor
    inpaint: gr.ImageEditor
    network_tabs: list
    extra: dict[str, Any] = field(default_factory=dict)
    scripts: Any = None  # the Script dropdown's panel (X/Y/Z plot, …)


def editor_mask(value: dict | None) -> Image.Image | None:
    """White where the user painted on any layer of an ImageEditor value (the brush strokes are the mask)."""
    if not value or not value.get("layers"):
        return None
    mask = None
    for layer in value["layers"]:
        if layer is None:
            continue
        alpha = layer.convert("RGBA").getchannel("A").point(lambda a: 255 if a > 0 else 0)
        mask = alpha if mask is None else ImageChops.lighter(mask, alpha)
    return mask


def _editor_background(value: dict | None, name: str) -> Image.Image:
    image = (value or {}).get("background")
    if image is None:
        raise UserInputError(f"{name}: upload an image first")
    return image.convert("RGB")


def init_and_mask(mode: str, data: dict, tab: Img2ImgTab) -> tuple[Image.Image, Image.Image | None]:
    """The init image and mask the chosen sub-tab provides."""
    if mode == "img2img":
        if data[tab.init_image] is None:
            raise UserInputError("img2img: upload an image first")
        return data[tab.init_image].convert("RGB"), None
    if mode == "Sketch":
        value = data[tab.sketch] or {}
        if value.get("composite") is None:
            raise UserInputError("Sketch: upload an image first")
        return value["composite"].convert("RGB"), None
    if mode == "Inpaint":
        value = data[tab.inpaint]
        mask = editor_mask(value)
        if mask is None or not mask.getbbox():
            raise UserInputError("Inpaint: paint over the area to change first")
        return _editor_background(value, "Inpaint"), mask
    image, mask = data[tab.extra["upload_image"]], data[tab.extra["upload_mask"]]
    if image is None or mask is None:
        raise UserInputError("Inpaint upload: give both an image and a mask")
    return image.convert("RGB"), mask.convert("L")


def build_img2img(runtime: Runtime, top: TopBar, style_store: StyleStore, jobs: SessionJobs, previewer,
                  thumbnails: ThumbnailCache) -> Img2ImgTab:
    prompts = prompt_area("img2img", style_store)
    mode = gr.State("img2img")
    extra: dict[str, Any] = {}
    with gr.Row():
        with gr.Column(scale=1, min_width=360):
            with gr.Tabs(elem_id="img2img_extra_tabs"):
                with gr.Tab(t("Generation"), elem_id="img2img_generation_tab"):
                    with gr.Tabs(elem_id="img2img_mode_tabs") as mode_tabs:
                        with gr.Tab(t("img2img"), id="img2img", elem_id="img2img_img2img_tab") as tab_img:
                            init_image = gr.Image(label=t("Image"), type="pil", elem_id="img2img_image", height=360,
                                                  sources=["upload", "clipboard"])
                            add_interrogate_button(runtime, init_image, prompts.prompt)
                        with gr.Tab(t("Sketch"), id="sketch", elem_id="img2img_sketch_tab") as tab_sketch:
                            sketch = gr.ImageEditor(label=t("Image"), type="pil", elem_id="img2img_sketch", height=360,
                                                    brush=gr.Brush(color_mode="defaults"))
                        with gr.Tab(t("Inpaint"), id="inpaint", elem_id="img2img_inpaint_tab") as tab_inpaint:
                            inpaint = gr.ImageEditor(label=t("Image"), type="pil", elem_id="img2img_inpaint",
                                                     height=360, layers=False,
                                                     brush=gr.Brush(colors=["#ffffff"], color_mode="fixed",
                                                                    default_size=8))
                        with gr.Tab(t("Inpaint upload"), id="inpaint_upload", elem_id="img2img_upload_tab") as tab_up:
                            with gr.Row():
                                extra["upload_image"] = gr.Image(label=t("Image"), type="pil", height=300)
                                extra["upload_mask"] = gr.Image(label=t("Mask"), type="pil", height=300,
                                                                image_mode="L")
                        with gr.Tab(t("Batch"), id="batch", elem_id="img2img_batch_tab") as tab_batch:
                            extra["batch_in"] = gr.Textbox(label=t("Input directory"))
                            extra["batch_out"] = gr.Textbox(label=t("Output directory"))
                            extra["batch_mask"] = gr.Textbox(label=t("Inpaint batch mask directory"))
                    extra["resize_mode"] = gr.Radio(translated_choices(RESIZE_MODES), value=RESIZE_MODES[0],
                                                    type="index", label=t("Resize mode"),
                                                    elem_id="img2img_resize_mode")
                    params = sampling_params("img2img", runtime.settings.current, runtime.default_size())
                    sizes = size_controls()
                    extra["size_kind"], extra["size_scale"] = sizes.kind, sizes.scale
                    extra["denoising"] = gr.Slider(0, 1, value=0.75, step=0.01, label=t("Denoising strength"),
                                                   elem_id="img2img_denoising_strength")
                    with gr.Accordion(t("Inpaint"), open=True, elem_id="img2img_inpaint_controls",
                                      visible=False) as inpaint_controls:
                        with gr.Row():
                            extra["mask_blur"] = gr.Slider(0, 64, value=4, step=1, label=t("Mask blur"),
                                                           elem_id="img2img_mask_blur")
                            extra["mask_invert"] = gr.Radio(translated_choices(MASK_MODES), type="index",
                                                            value="Inpaint masked", label=t("Mask mode"),
                                                            elem_id="img2img_mask_mode")
                        extra["fill"] = gr.Radio(translated_choices(INPAINTING_FILLS), value=INPAINTING_FILLS[1],
                                                 type="index", label=t("Masked content"),
                                                 elem_id="img2img_inpainting_fill")
                        with gr.Row():
                            extra["full_res"] = gr.Radio(translated_choices(INPAINT_AREAS), value="Whole picture",
                                                         type="index", label=t("Inpaint area"),
                                                         elem_id="img2img_inpaint_full_res")
                            extra["padding"] = gr.Slider(0, 256, value=32, step=4,
                                                         label=t("Only masked padding, pixels"),
                                                         elem_id="img2img_inpaint_full_res_padding")
                    scripts = scripts_panel("img2img", "img2img", runtime, style_store)
                tabs = network_tabs("img2img", runtime, thumbnails)
        with gr.Column(scale=1, min_width=360):
            output = output_area("img2img")
    for sub_tab, name in ((tab_img, "img2img"), (tab_sketch, "Sketch"), (tab_inpaint, "Inpaint"),
                          (tab_up, "Inpaint upload"), (tab_batch, "Batch")):
        sub_tab.select(lambda name=name: name, None, [mode], show_progress="hidden", concurrency_limit=None)
    # The mask settings only mean something on the inpaint sub-tabs (also when "Send to inpaint" switches there).
    mode.change(lambda name: gr.update(visible=name in ("Inpaint", "Inpaint upload", "Batch")), [mode],
                [inpaint_controls], show_progress="hidden", concurrency_limit=None)
    card_actions("img2img", runtime, thumbnails, tabs, output.gallery, output.selected, top.checkpoint)
    wire_size_controls(sizes, mode, [init_image, sketch, inpaint, extra["upload_image"]], params.width, params.height)
    extra["mode"] = mode  # other tabs' "Send to" buttons switch the sub-tab and must set the mode with it
    tab = Img2ImgTab(prompts, params, output, mode_tabs, init_image, sketch, inpaint, tabs, extra, scripts)

    inputs = {mode, top.checkpoint, top.vae, top.clip_skip, prompts.prompt, prompts.negative, prompts.styles,
              params.sampler, params.scheduler, params.steps, params.width, params.height, params.batch_count,
              params.batch_size, params.cfg_scale, params.seed, params.subseed, params.subseed_strength,
              params.seed_resize_w, params.seed_resize_h, init_image, sketch, inpaint, *extra.values(),
              *scripts.inputs}

    def on_generate(data: dict, request: gr.Request):
        try:
            values = request_values(runtime, style_store, data, top, prompts, params)
            values.update(denoising_strength=float(data[extra["denoising"]]),
                          resize_mode=int(data[extra["resize_mode"]]), mask_blur=int(data[extra["mask_blur"]]),
                          inpainting_mask_invert=int(data[extra["mask_invert"]]),
                          inpainting_fill=int(data[extra["fill"]]), inpaint_full_res=bool(data[extra["full_res"]]),
                          inpaint_full_res_padding=int(data[extra["padding"]]))
            if data[mode] == "Batch":
                folders = BatchFolders(data[extra["batch_in"]] or "", data[extra["batch_out"]] or "",
                                       data[extra["batch_mask"]] or "")
                work = lambda running: img2img_batch(values, folders, runtime, running)  # noqa: E731
            else:
                image, mask = init_and_mask(data[mode], data, tab)
                values.update(resize_by_values(data, sizes, image))
                generation_request = make_request(Img2ImgRequest, {**values, "init_images": [image], "mask": mask})
                work = scripts.work(data, runtime, style_store, "img2img", generation_request) or (
                    lambda running: img2img(generation_request, runtime, running))
        except UserInputError as error:
            raise ui_error(error) from None
        yield from stream_generation(runtime, jobs, request.session_hash or "anonymous", runtime.new_job(),
                                     work, prefix="img2img", local=is_local(request))

    prompts.generate.click(on_generate, inputs, [output.gallery, output.infotexts, output.infotext, prompts.progress],
                           api_name="img2img", concurrency_limit=None, show_progress="minimal")
    wire_job_buttons(prompts, jobs)
    params.recycle.click(seed_from_infotext, [output.infotext], [params.seed], show_progress="hidden",
                         concurrency_limit=None)
    return tab

