"""The Extras tab: upscale one image with processing.extras (the same function as /sdapi/v1/extra-single-image)."""
from __future__ import annotations

import gradio as gr

from webui.errors import UserInputError
from webui.processing.extras import ExtrasRequest, extras_single
from webui.processing.request import make_request
from webui.processing.runtime import Runtime
from webui.processing.upscale import upscaler_names
from webui.ui.i18n import t


def build_extras(runtime: Runtime) -> gr.Image:
    """Returns the input image component, so other tabs can send pictures here."""
    names = upscaler_names(runtime.upscalers)
    with gr.Row():
        with gr.Column():
            image = gr.Image(label=t("Source"), type="pil", elem_id="extras_image", height=360,
                             sources=["upload", "clipboard"])
            with gr.Tabs():
                with gr.Tab(t("Scale by"), id="by") as by_tab:
                    scale = gr.Slider(1, 8, value=2, step=0.05, label=t("Scale by"), elem_id="extras_upscaling_resize")
                with gr.Tab(t("Scale to"), id="to") as to_tab:
                    with gr.Row():
                        width = gr.Number(512, precision=0, label=t("Width"))
                        height = gr.Number(512, precision=0, label=t("Height"))
                        crop = gr.Checkbox(True, label=t("Crop to fit"))
            resize_mode = gr.State(0)
            by_tab.select(lambda: 0, None, [resize_mode], show_progress="hidden", concurrency_limit=None)
            to_tab.select(lambda: 1, None, [resize_mode], show_progress="hidden", concurrency_limit=None)
            with gr.Row():
                upscaler_1 = gr.Dropdown(names, value="Lanczos" if "Lanczos" in names else names[0],
                                         label=t("Upscaler 1"), elem_id="extras_upscaler_1")
                upscaler_2 = gr.Dropdown(names, value="None", label=t("Upscaler 2"), elem_id="extras_upscaler_2")
                visibility = gr.Slider(0, 1, value=0, step=0.01, label=t("Upscaler 2 visibility"))
            run = gr.Button(t("Generate"), variant="primary", elem_id="extras_generate")
        with gr.Column():
            result = gr.Image(label=t("Output"), type="pil", interactive=False, elem_id="extras_result", height=360,
                              format="png")
            info = gr.HTML(elem_id="extras_info")

    def on_run(picture, mode, by, w, h, crop_to_fit, first, second, second_visibility):
        if picture is None:
            raise gr.Error("Upload an image first")
        try:
            request = make_request(ExtrasRequest, dict(
                resize_mode=mode, upscaling_resize=float(by), upscaling_resize_w=int(w or 0),
                upscaling_resize_h=int(h or 0), upscaling_crop=bool(crop_to_fit), upscaler_1=first,
                upscaler_2=second, extras_upscaler_2_visibility=float(second_visibility)))
            done = extras_single(request, picture, runtime, save=True)
        except UserInputError as error:
            raise gr.Error(str(error)) from None
        return done.image, done.html_info

    run.click(on_run, [image, resize_mode, scale, width, height, crop, upscaler_1, upscaler_2, visibility],
              [result, info], api_name="extras", concurrency_limit=1)
    return image
