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
from webui.sampling.names import SAMPLER_NAMES, SCHEDULE_NAMES
from webui.ui.extra_networks import ThumbnailCache
from webui.ui.generation import SessionJobs, stream_generation
from webui.ui.i18n import t, translated_choices
from webui.ui.messages import ui_error
from webui.ui.networks_panel import card_actions, network_tabs
from webui.ui.panels import (
    AUTOMATIC,
    OutputArea,
    PromptArea,
    SamplingParams,
    output_area,
    prompt_area,
    sampling_params,
    seed_from_infotext,
)
from webui.ui.paste import USE_SAME_SAMPLER, USE_SAME_SCHEDULER
from webui.ui.result_files import is_local
from webui.ui.scripts_panel import scripts_panel


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
    sampler: gr.Dropdown
    scheduler: gr.Dropdown
    prompt: gr.Textbox
    negative_prompt: gr.Textbox
    accordion: gr.Accordion


@dataclass
class Txt2ImgTab:
    prompts: PromptArea
    params: SamplingParams
    hires: Hires
    output: OutputArea
    network_tabs: list
    scripts: Any = None  # the Script dropdown's panel (X/Y/Z plot, …)


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
                      hr_resize_x=int(data[hires.resize_x]), hr_resize_y=int(data[hires.resize_y]),
                      hr_sampler_name=_same_as_first(data[hires.sampler], USE_SAME_SAMPLER),
                      hr_scheduler=_same_as_first(data[hires.scheduler], USE_SAME_SCHEDULER),
                      hr_prompt=data[hires.prompt] or "", hr_negative_prompt=data[hires.negative_prompt] or "")
    return values


def _same_as_first(value: str | None, same: str) -> str:
    """The hires pass's own choice, or "" (the first pass's) for A1111's "Use same …" entry."""
    return "" if not value or value == same else value


def hires_accordion(runtime: Runtime) -> Hires:
    with gr.Accordion(t("Hires. fix"), open=False, elem_id="txt2img_hr") as accordion:
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
        with gr.Row():
            sampler = gr.Dropdown(translated_choices([USE_SAME_SAMPLER, *(s.name for s in SAMPLER_NAMES)],
                                                     (USE_SAME_SAMPLER,)), value=USE_SAME_SAMPLER,
                                  label=t("Hires sampling method"), elem_id="hr_sampler")
            scheduler = gr.Dropdown(translated_choices([USE_SAME_SCHEDULER, *(s.label for s in SCHEDULE_NAMES)],
                                                       (USE_SAME_SCHEDULER, *AUTOMATIC)),
                                    value=USE_SAME_SCHEDULER, label=t("Hires schedule type"), elem_id="hr_scheduler")
        with gr.Row():
            prompt = gr.Textbox(label=t("Hires prompt"), lines=2, elem_id="hires_prompt",
                                placeholder=t("Prompt for hires fix pass.\nLeave empty to use the same prompt as in "
                                              "first pass."))
            negative = gr.Textbox(label=t("Hires negative prompt"), lines=2, elem_id="hires_neg_prompt",
                                  placeholder=t("Negative prompt for hires fix pass.\nLeave empty to use the same "
                                                "negative prompt as in first pass."))
    return Hires(enable, upscaler, steps, denoising, scale, resize_x, resize_y, sampler, scheduler, prompt, negative,
                 accordion)


def build_txt2img(runtime: Runtime, top: TopBar, style_store: StyleStore, jobs: SessionJobs, previewer,
                  thumbnails: ThumbnailCache) -> Txt2ImgTab:
    prompts = prompt_area("txt2img", style_store)
    with gr.Row():
        with gr.Column(scale=1, min_width=360):
            with gr.Tabs(elem_id="txt2img_extra_tabs"):
                with gr.Tab(t("Generation"), elem_id="txt2img_generation_tab"):
                    params = sampling_params("txt2img", runtime.settings.current, runtime.default_size())
                    hires = hires_accordion(runtime)
                    scripts = scripts_panel("txt2img", "txt2img", runtime, style_store)
                tabs = network_tabs("txt2img", runtime, thumbnails)
        with gr.Column(scale=1, min_width=360):
            output = output_area("txt2img")
    card_actions("txt2img", runtime, thumbnails, tabs, output.gallery, output.selected, top.checkpoint)

    inputs: set[Block] = {top.checkpoint, top.vae, top.clip_skip, prompts.prompt, prompts.negative, prompts.styles,
              params.sampler, params.scheduler, params.steps, params.width, params.height, params.batch_count,
              params.batch_size, params.cfg_scale, params.seed, params.subseed, params.subseed_strength,
              params.seed_resize_w, params.seed_resize_h, hires.enable, hires.upscaler, hires.second_pass_steps,
              hires.denoising, hires.scale, hires.resize_x, hires.resize_y, hires.sampler, hires.scheduler,
              hires.prompt, hires.negative_prompt, *scripts.inputs}

    def on_generate(data: dict, request: gr.Request):
        try:
            values = request_values(runtime, style_store, data, top, prompts, params, hires)
            generation_request = make_request(Txt2ImgRequest, values)
        except UserInputError as error:
            raise ui_error(error) from None
        job = runtime.new_job()
        session = request.session_hash or "anonymous"
        work = scripts.work(data, runtime, style_store, "txt2img", generation_request) or (
            lambda running: txt2img(generation_request, runtime, running))
        yield from stream_generation(runtime, jobs, session, job, work, prefix="txt2img", local=is_local(request))

    outputs = [output.gallery, output.infotexts, output.infotext, prompts.progress]
    # concurrency_limit=None: our GenerationQueue serialises the model and reports queue positions itself.
    prompts.generate.click(on_generate, inputs, outputs, api_name="txt2img", concurrency_limit=None,
                           show_progress="minimal")
    wire_job_buttons(prompts, jobs)
    params.recycle.click(seed_from_infotext, [output.infotext], [params.seed], show_progress="hidden",
                         concurrency_limit=None)
    return Txt2ImgTab(prompts, params, hires, output, tabs, scripts)


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
