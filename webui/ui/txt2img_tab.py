"""The txt2img tab: form values → Txt2ImgRequest → the same txt2img() the API calls, streamed with progress."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.blocks import Block

from webui.errors import UserInputError
from webui.processing.hires import known_upscalers
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.runtime import Runtime
from webui.processing.styles import StyleStore
from webui.processing.txt2img import txt2img
from webui.ui.extra_networks import ThumbnailCache
from webui.ui.generation import SessionJobs, stream_generation
from webui.ui.i18n import t
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


@dataclass
class TopBar:
    checkpoint: gr.Dropdown
    vae: gr.Dropdown
    clip_skip: gr.Slider


@dataclass
class Hires:
    enable: gr.Checkbox
    upscaler: gr.Dropdown
    second_pass_steps: gr.Slider
    denoising: gr.Slider
    scale: gr.Slider
    resize_x: gr.Slider
    resize_y: gr.Slider


@dataclass
class Txt2ImgTab:
    prompts: PromptArea
    params: SamplingParams
    hires: Hires
    output: OutputArea
    network_tabs: list


def request_values(runtime: Runtime, style_store: StyleStore, data: dict, top: TopBar, prompts: PromptArea,
                   params: SamplingParams, hires: Hires | None = None) -> dict[str, Any]:
    """The request fields a form holds; styles are applied to the prompts here, as A1111 does on Generate."""
    prompt, negative = style_store.apply(list(data[prompts.styles] or []), data[prompts.prompt] or "",
                                         data[prompts.negative] or "")
    seed = data[params.seed]
    subseed = data[params.subseed]
    values = dict(prompt=prompt, negative_prompt=negative, sampler_name=data[params.sampler],
                  scheduler=data[params.scheduler], steps=int(data[params.steps]), width=int(data[params.width]),
                  height=int(data[params.height]), n_iter=int(data[params.batch_count]),
                  batch_size=int(data[params.batch_size]), cfg_scale=float(data[params.cfg_scale]),
                  seed=int(seed if seed is not None else -1), subseed=int(subseed if subseed is not None else -1),
                  subseed_strength=float(data[params.subseed_strength]),
                  seed_resize_from_w=int(data[params.seed_resize_w]),
                  seed_resize_from_h=int(data[params.seed_resize_h]),
                  clip_skip=int(data[top.clip_skip]), checkpoint=data[top.checkpoint] or None,
                  vae=data[top.vae] or "Automatic", emphasis=runtime.settings.current.emphasis)
    if hires is not None and data[hires.enable]:
        values.update(enable_hr=True, hr_upscaler=data[hires.upscaler],
                      hr_second_pass_steps=int(data[hires.second_pass_steps]),
                      denoising_strength=float(data[hires.denoising]), hr_scale=float(data[hires.scale]),
                      hr_resize_x=int(data[hires.resize_x]), hr_resize_y=int(data[hires.resize_y]))
    return values


def hires_accordion(runtime: Runtime) -> Hires:
    with gr.Accordion(t("Hires. fix"), open=False, elem_id="txt2img_hr"):
        enable = gr.Checkbox(label=t("Hires. fix"), value=False, elem_id="txt2img_enable_hr")
        with gr.Row():
            upscaler = gr.Dropdown(known_upscalers(runtime), value="Latent", label=t("Upscaler"),
                                   elem_id="txt2img_hr_upscaler")
            steps = gr.Slider(0, 150, value=0, step=1, label=t("Hires steps"), elem_id="txt2img_hires_steps")
            denoising = gr.Slider(0, 1, value=0.7, step=0.01, label=t("Denoising strength"),
                                  elem_id="txt2img_denoising_strength")
        with gr.Row():
            scale = gr.Slider(1, 4, value=2, step=0.05, label=t("Upscale by"), elem_id="txt2img_hr_scale")
            resize_x = gr.Slider(0, 2048, value=0, step=8, label=t("Resize width to"), elem_id="txt2img_hr_resize_x")
            resize_y = gr.Slider(0, 2048, value=0, step=8, label=t("Resize height to"), elem_id="txt2img_hr_resize_y")
    return Hires(enable, upscaler, steps, denoising, scale, resize_x, resize_y)


def build_txt2img(runtime: Runtime, top: TopBar, style_store: StyleStore, jobs: SessionJobs, previewer,
                  thumbnails: ThumbnailCache) -> Txt2ImgTab:
    prompts = prompt_area("txt2img", style_store)
    with gr.Row():
        with gr.Column(scale=1, min_width=360):
            with gr.Tabs(elem_id="txt2img_extra_tabs"):
                with gr.Tab(t("Generation"), elem_id="txt2img_generation_tab"):
                    params = sampling_params("txt2img", runtime.settings.current)
                    hires = hires_accordion(runtime)
                tabs = network_tabs("txt2img", runtime, thumbnails)
        with gr.Column(scale=1, min_width=360):
            output = output_area("txt2img")
    card_actions("txt2img", runtime, thumbnails, tabs, output.gallery, output.selected, top.checkpoint)

    inputs: set[Block] = {top.checkpoint, top.vae, top.clip_skip, prompts.prompt, prompts.negative, prompts.styles,
              params.sampler, params.scheduler, params.steps, params.width, params.height, params.batch_count,
              params.batch_size, params.cfg_scale, params.seed, params.subseed, params.subseed_strength,
              params.seed_resize_w, params.seed_resize_h, hires.enable, hires.upscaler, hires.second_pass_steps,
              hires.denoising, hires.scale, hires.resize_x, hires.resize_y}

    def on_generate(data: dict, request: gr.Request):
        try:
            values = request_values(runtime, style_store, data, top, prompts, params, hires)
            generation_request = make_request(Txt2ImgRequest, values)
        except UserInputError as error:
            raise gr.Error(str(error)) from None
        job = runtime.new_job()
        session = request.session_hash or "anonymous"
        yield from stream_generation(runtime, jobs, session, job,
                                     lambda running: txt2img(generation_request, runtime, running))

    outputs = [output.gallery, output.infotexts, output.infotext, prompts.progress]
    # concurrency_limit=None: our GenerationQueue serialises the model and reports queue positions itself.
    prompts.generate.click(on_generate, inputs, outputs, api_name="txt2img", concurrency_limit=None,
                           show_progress="minimal")
    wire_job_buttons(prompts, jobs)
    params.recycle.click(seed_from_infotext, [output.infotext], [params.seed], show_progress="hidden",
                         concurrency_limit=None)
    return Txt2ImgTab(prompts, params, hires, output, tabs)


def wire_job_buttons(prompts: PromptArea, jobs: SessionJobs) -> None:
    """Interrupt keeps the finished images; Skip moves on to the next image of the batch."""

    def interrupt(request: gr.Request) -> None:
        job = jobs.get(request.session_hash or "anonymous")
        if job is not None:
            job.interrupt()

    def skip(request: gr.Request) -> None:
        job = jobs.get(request.session_hash or "anonymous")
        if job is not None:
            job.skip()

    prompts.interrupt.click(interrupt, None, None, concurrency_limit=None, show_progress="hidden")
    prompts.skip.click(skip, None, None, concurrency_limit=None, show_progress="hidden")
