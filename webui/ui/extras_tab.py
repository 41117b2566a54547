"""The Extras tab: upscale one image with processing.extras (the same function as /sdapi/v1/extra-single-image)."""
from __future__ import annotations

import gradio as gr

from webui.errors import UserInputError
from webui.processing.extras import ExtrasRequest, extras_single, plaintext_to_html
from webui.processing.jobs import JobInterrupted, JobState
from webui.processing.request import make_request
from webui.processing.runtime import Runtime
from webui.processing.upscale import upscaler_names
from webui.ui.generation import SessionJobs
from webui.ui.i18n import t
from webui.ui.messages import shown_error, ui_error, ui_text


def build_extras(runtime: Runtime) -> gr.Image:
    """Returns the input image component, so other tabs can send pictures here."""
    names = upscaler_names(runtime.upscalers)
    jobs = SessionJobs()  # the upscale each browser session started, for its Interrupt button
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
            with gr.Row():
                run = gr.Button(t("Generate"), variant="primary", elem_id="extras_generate")
                interrupt = gr.Button(t("Interrupt"), elem_id="extras_interrupt", size="sm", min_width=70)
        with gr.Column():
            result = gr.Image(label=t("Output"), type="pil", interactive=False, elem_id="extras_result", height=360,
                              format="png")
            info = gr.HTML(elem_id="extras_info")

    def on_run(picture, mode, by, w, h, crop_to_fit, first, second, second_visibility, request: gr.Request):
        if picture is None:
            raise shown_error(ui_text("Upload an image first"))
        try:
            extras = make_request(ExtrasRequest, dict(
                resize_mode=mode, upscaling_resize=float(by), upscaling_resize_w=int(w or 0),
                upscaling_resize_h=int(h or 0), upscaling_crop=bool(crop_to_fit), upscaler_1=first,
                upscaler_2=second, extras_upscaler_2_visibility=float(second_visibility)))
        except UserInputError as error:
            raise ui_error(error) from None
        session, job = request.session_hash or "anonymous", JobState(text="extras")
        jobs.put(session, job)
        try:
            # In the queue the UI and API share: upscaler models compete with generation for memory.
            done = runtime.queue.run(job, lambda: extras_single(extras, picture, runtime, save=True, job=job))
        except JobInterrupted:
            return None, plaintext_to_html(ui_text("Interrupted"))
        except UserInputError as error:
            raise ui_error(error) from None
        finally:
            jobs.drop(session, job)
        return done.image, done.html_info

    def on_interrupt(request: gr.Request) -> None:
        job = jobs.get(request.session_hash or "anonymous")
        if job is not None:
            job.interrupt()

    run.click(on_run, [image, resize_mode, scale, width, height, crop, upscaler_1, upscaler_2, visibility],
              [result, info], api_name="extras", concurrency_limit=1)
    interrupt.click(on_interrupt, None, None, concurrency_limit=None, show_progress="hidden")
    return image
