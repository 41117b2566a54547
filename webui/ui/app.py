"""The Gradio WebUI: a thin adapter that turns form values into a request and shows the result."""
from __future__ import annotations

import gradio as gr

from webui.errors import UserInputError
from webui.models.architectures import UnsupportedModelError
from webui.processing.jobs import JobState
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.runtime import Runtime
from webui.processing.txt2img import txt2img
from webui.sampling.names import SAMPLER_NAMES, SCHEDULE_NAMES

DARK_THEME_JS = """() => { document.body.classList.add('dark'); }"""


def checkpoint_choices(runtime: Runtime) -> list[str]:
    return [info.name for info in runtime.registry.checkpoints()]


def vae_choices(runtime: Runtime) -> list[str]:
    return ["Automatic", "None", *(v.name for v in runtime.registry.vaes())]


def run_txt2img(runtime: Runtime, values: dict, progress: gr.Progress | None = None):
    """Build the typed request from the form and run the same processing function the API uses."""
    job = JobState()
    if progress is not None:
        job.on_step = lambda state: progress((state.sampling_step, state.sampling_steps), desc="Sampling")
    try:
        request = make_request(Txt2ImgRequest, values)
        result = txt2img(request, runtime, job)
    except (UserInputError, UnsupportedModelError) as error:
        raise gr.Error(str(error)) from None
    for warning in result.warnings:
        gr.Warning(warning)
    return result


def build_ui(runtime: Runtime) -> gr.Blocks:
    with gr.Blocks(title="Stable Diffusion WebUI") as demo:
        with gr.Row():
            choices = checkpoint_choices(runtime)
            default = runtime.registry.default_checkpoint()
            checkpoint = gr.Dropdown(choices, value=default.name if default else None, label="Stable Diffusion checkpoint",
                                     scale=4)
            refresh = gr.Button("🔄", scale=0, min_width=40)
            vae = gr.Dropdown(vae_choices(runtime), value="Automatic", label="SD VAE", scale=2)
            clip_skip = gr.Slider(1, 12, value=1, step=1, label="Clip skip", scale=2)
        with gr.Tab("txt2img"):
            with gr.Row():
                with gr.Column(scale=3):
                    prompt = gr.Textbox(label="Prompt", lines=3, placeholder="(masterpiece:1.2), 1girl, <lora:name:0.7>")
                    negative = gr.Textbox(label="Negative prompt", lines=2)
                with gr.Column(scale=1, min_width=160):
                    generate = gr.Button("Generate", variant="primary")
            with gr.Row():
                with gr.Column():
                    with gr.Row():
                        sampler = gr.Dropdown([s.name for s in SAMPLER_NAMES], value="DPM++ 2M", label="Sampling method")
                        scheduler = gr.Dropdown([s.label for s in SCHEDULE_NAMES], value="Automatic",
                                                label="Schedule type")
                        steps = gr.Slider(1, 150, value=20, step=1, label="Sampling steps")
                    with gr.Row():
                        width = gr.Slider(64, 2048, value=512, step=8, label="Width")
                        height = gr.Slider(64, 2048, value=512, step=8, label="Height")
                    with gr.Row():
                        batch_count = gr.Slider(1, 100, value=1, step=1, label="Batch count")
                        batch_size = gr.Slider(1, 8, value=1, step=1, label="Batch size")
                    cfg_scale = gr.Slider(1.0, 30.0, value=7.0, step=0.5, label="CFG Scale")
                    seed = gr.Number(value=-1, precision=0, label="Seed")
                with gr.Column():
                    gallery = gr.Gallery(label="Output", columns=2, height=520, format="png")
                    infotext = gr.Textbox(label="Generation info", lines=4, interactive=False)

        def on_generate(ckpt, vae_name, skip, p, n, smp, sch, st, w, h, count, size, cfg, sd,
                        progress=gr.Progress()):
            values = dict(prompt=p, negative_prompt=n, sampler_name=smp, scheduler=sch, steps=int(st),
                          width=int(w), height=int(h), n_iter=int(count), batch_size=int(size), cfg_scale=float(cfg),
                          seed=int(sd if sd is not None else -1), clip_skip=int(skip), checkpoint=ckpt, vae=vae_name)
            result = run_txt2img(runtime, values, progress)
            gallery_items = ([result.grid] if result.grid is not None else []) + result.images
            return gallery_items, (result.infotexts[0] if result.infotexts else "")

        generate.click(on_generate, [checkpoint, vae, clip_skip, prompt, negative, sampler, scheduler, steps, width,
                                     height, batch_count, batch_size, cfg_scale, seed], [gallery, infotext],
                       api_name="txt2img")

        def on_refresh(current):
            runtime.registry.refresh()
            names = checkpoint_choices(runtime)
            return (gr.Dropdown(choices=names, value=current if current in names else (names[0] if names else None)),
                    gr.Dropdown(choices=vae_choices(runtime)))

        refresh.click(on_refresh, [checkpoint], [checkpoint, vae], api_name="refresh_checkpoints")
    return demo


def launch_options(theme: str) -> dict:
    return {"js": DARK_THEME_JS} if theme == "dark" else {}
