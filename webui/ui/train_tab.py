"""The Train tab: Parameters (kohya options, presets, step count) and Run (start, stop, resume, live plots)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from webui.errors import UserInputError
from webui.files import atomic_write_text
from webui.processing.runtime import Runtime
from webui.training.buckets import format_histogram
from webui.training.config import OPTIMIZERS, PRECISIONS, SCHEDULERS, TrainingConfig
from webui.training.dataset import load_dataset
from webui.training.logs import plot
from webui.training.presets import BUILTIN_PRESETS, load_preset, preset_names, save_preset
from webui.training.samples import KOHYA_SAMPLERS
from webui.training.service import training_service
from webui.ui.i18n import t, translated_choices
from webui.ui.messages import shown_error, ui_error, ui_message, ui_text
from webui.ui.train_dataset_tab import build_dataset_tabs

_DEFAULTS = TrainingConfig()
# (option, kind, label); the kind picks the widget. Order = the form's order.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("train_data_dir", "text", "Image folder (train_data_dir: the parent of '10_name' folders)"),
    ("reg_data_dir", "text", "Regularisation folder (reg_data_dir, optional)"),
    ("output_name", "text", "Output name"), ("trigger_word", "text", "Trigger word (the card's activation text)"),
    ("network_dim", "int", "Network rank (network_dim)"), ("network_alpha", "float", "Network alpha"),
    ("conv_dim", "int", "Conv rank (LoCon conv_dim, 0 = off)"), ("conv_alpha", "float", "Conv alpha"),
    ("learning_rate", "float", "Learning rate"), ("unet_lr", "float", "UNet learning rate"),
    ("text_encoder_lr", "float", "Text encoder learning rate"), ("optimizer_type", "optimizer", "Optimizer"),
    ("lr_scheduler", "scheduler", "LR scheduler"), ("lr_warmup_steps", "float", "Warmup steps (or ratio < 1)"),
    ("lr_scheduler_num_cycles", "int", "Restart cycles"), ("max_train_epochs", "int", "Epochs"),
    ("max_train_steps", "int", "Max steps (when epochs is 0)"), ("train_batch_size", "int", "Batch size"),
    ("gradient_accumulation_steps", "int", "Gradient accumulation"), ("resolution", "text", "Resolution (W,H)"),
    ("enable_bucket", "bool", "Aspect-ratio buckets"), ("min_bucket_reso", "int", "Min bucket"),
    ("max_bucket_reso", "int", "Max bucket"), ("bucket_reso_steps", "int", "Bucket step"),
    ("noise_offset", "float", "Noise offset"), ("min_snr_gamma", "float", "Min-SNR gamma"),
    ("clip_skip", "int", "Clip skip"), ("shuffle_caption", "bool", "Shuffle captions"),
    ("keep_tokens", "int", "Keep tokens"), ("caption_dropout_rate", "float", "Caption dropout"),
    ("flip_aug", "bool", "Flip augmentation"), ("cache_latents", "bool", "Cache latents"),
    ("cache_latents_to_disk", "bool", "Cache latents to disk"), ("gradient_checkpointing", "bool",
                                                                 "Gradient checkpointing"),
    ("mixed_precision", "precision", "Mixed precision"), ("seed", "int", "Seed"),
    ("max_grad_norm", "float", "Max grad norm"), ("network_train_unet_only", "bool", "Train the UNet only"),
    ("network_weights", "text", "Continue from LoRA (network_weights)"),
    ("save_every_n_epochs", "int", "Save every N epochs"), ("sample_every_n_epochs", "int", "Sample every N epochs"),
    ("sample_every_n_steps", "int", "Sample every N steps"), ("sample_sampler", "sampler", "Sample sampler"),
)
_CHOICES = {"optimizer": list(OPTIMIZERS), "scheduler": list(SCHEDULERS), "precision": list(PRECISIONS),
            "sampler": list(KOHYA_SAMPLERS)}


def _default(name: str) -> Any:
    if name in ("conv_dim", "conv_alpha"):
        return 0
    value = getattr(_DEFAULTS, name)
    return 0 if value is None and name not in ("train_data_dir", "reg_data_dir", "network_weights", "trigger_word") \
        else value


def _widget(name: str, kind: str, label: str) -> gr.components.Component:
    value = _default(name)
    elem_id = f"train_{name}"
    if kind == "bool":
        return gr.Checkbox(value=bool(value), label=t(label), elem_id=elem_id)
    if kind in _CHOICES:
        return gr.Dropdown(translated_choices(_CHOICES[kind]), value=value, label=t(label), elem_id=elem_id)
    if kind in ("int", "float"):
        return gr.Number(value=value, label=t(label), precision=0 if kind == "int" else None, elem_id=elem_id)
    return gr.Textbox(value=value or "", label=t(label), elem_id=elem_id)


def _preset_choices(data_dir: Path) -> list[tuple[Any, str]]:
    """Built-in presets shown in the page's language; a user's own preset names as saved."""
    return translated_choices(preset_names(data_dir), only=BUILTIN_PRESETS)


def form_to_options(values: list[Any], checkpoint: str, sample_prompts: str, data_dir: Path) -> dict[str, Any]:
    """Form values -> kohya options; empty/zero optional numbers mean "not set", conv rank goes to network_args."""
    options: dict[str, Any] = {"pretrained_model_name_or_path": checkpoint}
    optional_zero = {"max_train_epochs", "noise_offset", "min_snr_gamma", "clip_skip", "seed", "unet_lr",
                     "text_encoder_lr", "save_every_n_epochs", "sample_every_n_epochs", "sample_every_n_steps"}
    for (name, _, _), value in zip(FIELDS, values, strict=True):
        if value in (None, "") or (name in optional_zero and value == 0):
            continue
        options[name] = value
    conv_dim, conv_alpha = options.pop("conv_dim", 0), options.pop("conv_alpha", 0)
    if conv_dim:
        options["network_args"] = [f"conv_dim={int(conv_dim)}", f"conv_alpha={conv_alpha or 1}"]
    if sample_prompts.strip():
        prompts = data_dir / "training_presets" / f"{options.get('output_name', 'last')}-prompts.txt"
        atomic_write_text(prompts, sample_prompts)
        options["sample_prompts"] = str(prompts)
    return options


@dataclass
class TrainControls:
    """What other tabs wire to: the Run sub-tab's epoch comparison and the form fields it reads."""

    compare: gr.Button
    output_name: gr.components.Component
    trigger_word: gr.components.Component
    last_run: Callable[[], str | None]  # the output name of the current/last run of this app


def build_train(runtime: Runtime) -> TrainControls:
    service = training_service(runtime)
    data_dir = runtime.folders.data
    with gr.Tabs(elem_id="train_tabs"):
        build_dataset_tabs(runtime)
        with gr.Tab(t("Parameters"), id="train_parameters", elem_id="tab_train_parameters"):
            with gr.Row():
                checkpoint = gr.Dropdown([c.name for c in runtime.registry.checkpoints()], label=t("Base model"),
                                         elem_id="train_checkpoint")
                preset = gr.Dropdown(_preset_choices(data_dir), label=t("Preset"), elem_id="train_preset")
                load = gr.Button(t("Load preset"), elem_id="train_load_preset")
                preset_name = gr.Textbox(label=t("Save as"), elem_id="train_preset_name")
                save = gr.Button(t("Save preset"), elem_id="train_save_preset")
            with gr.Row():
                widgets = [_widget(*spec) for spec in FIELDS[:4]]
            for first in range(4, len(FIELDS), 6):
                with gr.Row():
                    widgets += [_widget(*spec) for spec in FIELDS[first:first + 6]]
            prompts = gr.Textbox(lines=3, label=t("Sample prompts (kohya syntax: prompt --n neg --w 512 --h 512 "
                                                  "--d 1 --l 7 --s 20)"), elem_id="train_sample_prompts")
            count = gr.Button(t("Count images and steps"), elem_id="train_count")
            counts = gr.Textbox(label=t("Dataset"), lines=8, interactive=False, elem_id="train_counts")
        with gr.Tab(t("Run"), id="train_run", elem_id="tab_train_run"):
            with gr.Row():
                start = gr.Button(t("Start training"), variant="primary", elem_id="train_start")
                stop = gr.Button(t("Stop"), elem_id="train_stop")
                resume = gr.Button(t("Resume"), elem_id="train_resume")
                compare = gr.Button(t("Compare epochs (X/Y/Z)"), elem_id="train_compare_epochs")
            status = gr.Markdown(elem_id="train_status")
            with gr.Row():
                loss_plot = gr.Image(label=t("Loss and learning rate"), type="pil", elem_id="train_loss_plot")
                samples = gr.Gallery(label=t("Samples"), columns=4, elem_id="train_samples")
            timer = gr.Timer(1.0)

    def options(checkpoint_name, sample_text, *values):
        return form_to_options(list(values), checkpoint_name or "", sample_text or "", data_dir)

    def do_count(checkpoint_name, sample_text, *values):
        try:
            config = service.prepare(options(checkpoint_name, sample_text, *values))
            plan, _ = load_dataset(Path(config.train_data_dir) if config.train_data_dir else None,
                                   Path(config.reg_data_dir) if config.reg_data_dir else None, None,
                                   config.bucket_settings(), config.caption_extension)
        except UserInputError as error:
            return ui_text("error: {error}", error=ui_message(str(error)))
        epochs = config.max_train_epochs or 1
        return ui_message(plan.summary(config.train_batch_size, config.gradient_accumulation_steps, epochs)) + \
            "\n\n" + ui_text("buckets (images x repeats per epoch):") + "\n" + format_histogram(plan.bucket_counts())

    def do_start(checkpoint_name, sample_text, *values, resume_from: str | None = None):
        try:
            chosen = options(checkpoint_name, sample_text, *values)
            if resume_from:
                chosen["resume"] = resume_from
            service.start(chosen)
        except UserInputError as error:
            raise ui_error(error) from None

    def do_resume(checkpoint_name, sample_text, *values):
        state = service.status().get("state")
        if not state:
            raise shown_error(ui_text("Nothing to resume: stop a run first (its state is saved then)"))
        do_start(checkpoint_name, sample_text, *values, resume_from=state)

    def do_load(name):
        if not name:
            return [gr.skip()] * len(widgets)
        try:
            values = load_preset(data_dir, name)
        except UserInputError as error:
            raise ui_error(error) from None
        return [values.get(spec[0], gr.skip()) for spec in FIELDS]

    def do_save(name, *values):
        try:
            save_preset(data_dir, name, dict(zip((spec[0] for spec in FIELDS), values, strict=True)))
        except UserInputError as error:
            raise ui_error(error) from None
        return gr.update(choices=_preset_choices(data_dir), value=name)

    def refresh():
        state = service.status()
        text = f"**{ui_message(state['phase'])}** · " + ui_text(
            "step {step}/{total_steps} · epoch {epoch}/{total_epochs}", step=state["step"],
            total_steps=state["total_steps"], epoch=state["epoch"], total_epochs=state["total_epochs"])
        if state["average_loss"] is not None:
            text += f" · avr_loss {state['average_loss']:.4f} · lr {state['lr']:.2e} · {state['it_per_s']:.2f} it/s"
        if state["eta_seconds"]:
            text += " · " + ui_text("ETA {seconds:.0f} s", seconds=state["eta_seconds"])
        if state["queued"]:
            text += " · " + ui_text("waiting for the generation queue")
        if state["error"]:
            text += "\n\n" + ui_text("**Error:** {error}", error=ui_message(state["error"]))
        if state["saved"]:
            text += "\n\n" + ui_text("Saved: {files}", files=", ".join(Path(p).name for p in state["saved"]))
        history = service.history()
        picture = plot(history) if history is not None and history.steps else None
        return text, picture, state["samples"][-8:]

    inputs = [checkpoint, prompts, *widgets]
    count.click(do_count, inputs, [counts])
    start.click(do_start, inputs, None)
    resume.click(do_resume, inputs, None)
    stop.click(lambda: service.stop() and None, None, None)
    load.click(do_load, [preset], widgets)
    save.click(do_save, [preset_name, *widgets], [preset])
    timer.tick(refresh, None, [status, loss_plot, samples], show_progress="hidden")
    by_name = {spec[0]: widget for spec, widget in zip(FIELDS, widgets, strict=True)}
    return TrainControls(compare, by_name["output_name"], by_name["trigger_word"],
                         lambda: service.status().get("output_name"))
