"""The Checkpoint Merger tab (A1111's fields) and its "Extract LoRA (B − A)" panel, over webui.models.merge/extract."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import gradio as gr

from webui.errors import UserInputError
from webui.models.extract_lora import extract_lora_file
from webui.models.merge import (
    ConfigSource,
    MergeMethod,
    MergeRequest,
    ModelRef,
    Precision,
    default_name,
    merge_checkpoints,
)
from webui.networks.lora_extract import ExtractSettings
from webui.paths import resolve_inside
from webui.processing.runtime import Runtime
from webui.ui.i18n import t, translated_choices
from webui.ui.messages import ui_error, ui_text

VAE_NONE = "None"
SUFFIX = ".safetensors"
Progress = Callable[[int, int, str], None]


def _ref(runtime: Runtime, name: str | None) -> ModelRef | None:
    """The registry's file, A1111 name and (cached) sha256 for a dropdown value; None when nothing is chosen."""
    if not name:
        return None
    info = runtime.registry.find(name)
    return ModelRef(info.path, info.name, runtime.registry.sha256(info))


def _file_name(text: str) -> str:
    name = (text or "").strip()
    return name[: -len(SUFFIX)] if name.lower().endswith(SUFFIX) else name


def run_merge(runtime: Runtime, primary: str, secondary: str | None, tertiary: str | None, custom_name: str,
              multiplier: float, method: str, save_as_half: bool, save_metadata: bool, config_from: str, vae: str,
              discard: str, on_tensor: Progress | None = None) -> str:
    """Merge the named checkpoints into the checkpoint folder; returns the message the tab shows."""
    a = _ref(runtime, primary)
    if a is None:
        raise UserInputError("Choose the primary model (A)")
    interp = MergeMethod(method)
    request = MergeRequest(
        primary=a,
        secondary=_ref(runtime, secondary) if interp is not MergeMethod.NO_INTERPOLATION else None,
        tertiary=_ref(runtime, tertiary) if interp is MergeMethod.ADD_DIFFERENCE else None,
        out=Path(), method=interp, multiplier=float(multiplier),
        precision=Precision.FP16 if save_as_half else Precision.KEEP,
        vae=runtime.registry.find_vae(vae).path if vae and vae != VAE_NONE else None,
        config_from=ConfigSource(config_from), discard=discard or "", save_metadata=bool(save_metadata))
    name = _file_name(custom_name) or default_name(request)
    out = resolve_inside(runtime.folders.checkpoints, name + SUFFIX)
    report = merge_checkpoints(replace(request, out=out), on_tensor=on_tensor)
    runtime.registry.refresh()
    return ui_text("Checkpoint saved to {file}", file=report.out)


def run_extract(runtime: Runtime, base: str, tuned: str, lora_name: str, dim: float, conv_dim: float,
                on_layer: Progress | None = None) -> str:
    """Extract a LoRA of `tuned − base` into the first LoRA folder; returns the message the tab shows."""
    base_ref, tuned_ref = _ref(runtime, base), _ref(runtime, tuned)
    if base_ref is None or tuned_ref is None:
        raise UserInputError("Choose the base model as A and the fine-tuned model as B")
    name = _file_name(lora_name) or f"{tuned_ref.path.stem}-extracted-dim{int(dim)}"
    out = resolve_inside(runtime.folders.lora[0], name + SUFFIX)
    settings = ExtractSettings(dim=int(dim), conv_dim=int(conv_dim) or None)
    report = extract_lora_file(base_ref.path, tuned_ref.path, out, settings, on_layer=on_layer)
    runtime.loras.scan()
    return ui_text("LoRA saved to {file} ({layers} layers)", file=report.out, layers=report.layers)


def build_merger(runtime: Runtime, top_checkpoint: gr.Dropdown) -> None:
    """The tab's layout and events; a finished merge refreshes every checkpoint dropdown, the top bar's included."""
    names = [info.name for info in runtime.registry.checkpoints()]
    vaes = [VAE_NONE, *(v.name for v in runtime.registry.vaes())]
    with gr.Row(equal_height=False):
        with gr.Column(variant="compact"):
            gr.HTML(t("A merger of the models: the result is written to the checkpoint folder and listed at once."))
            with gr.Row():
                primary = gr.Dropdown(names, label=t("Primary model (A)"), elem_id="modelmerger_primary_model_name")
                secondary = gr.Dropdown(names, label=t("Secondary model (B)"),
                                        elem_id="modelmerger_secondary_model_name")
                tertiary = gr.Dropdown(names, label=t("Tertiary model (C)"), elem_id="modelmerger_tertiary_model_name")
                refresh = gr.Button("⟳", elem_classes="sdw-tool", elem_id="modelmerger_refresh_checkpoint_names",
                                    scale=0, min_width=40)
            custom_name = gr.Textbox(label=t("Custom Name (Optional)"), elem_id="modelmerger_custom_name")
            multiplier = gr.Slider(0.0, 1.0, value=0.3, step=0.05, label=t("Multiplier (M) - set to 0 to get model A"),
                                   elem_id="modelmerger_interp_amount")
            method = gr.Radio(translated_choices(m.value for m in MergeMethod), value=MergeMethod.WEIGHTED_SUM.value,
                              label=t("Interpolation Method"), elem_id="modelmerger_interp_method")
            with gr.Row():
                gr.Radio(translated_choices(["safetensors"]), value="safetensors", label=t("Checkpoint format"),
                         elem_id="modelmerger_checkpoint_format")
                save_as_half = gr.Checkbox(False, label=t("Save as float16"), elem_id="modelmerger_save_as_half")
                save_metadata = gr.Checkbox(True, label=t("Save metadata (.safetensors)"),
                                            elem_id="modelmerger_save_metadata")
            config_from = gr.Radio(translated_choices(c.value for c in ConfigSource), value=ConfigSource.FIRST.value,
                                   label=t("Copy config from"), elem_id="modelmerger_config_method")
            with gr.Row():
                vae = gr.Dropdown(vaes, value=VAE_NONE, label=t("Bake in VAE"), elem_id="modelmerger_bake_in_vae")
                discard = gr.Textbox(label=t("Discard weights with matching name"),
                                     elem_id="modelmerger_discard_weights")
            merge = gr.Button(t("Merge"), variant="primary", elem_id="modelmerger_merge")
            with gr.Accordion(t("Extract LoRA (B − A)"), open=False):
                with gr.Row():
                    lora_name = gr.Textbox(label=t("LoRA name (Optional)"), elem_id="modelmerger_lora_name")
                    dim = gr.Slider(1, 256, value=32, step=1, label=t("Network Rank (Dimension)"),
                                    elem_id="modelmerger_lora_dim")
                    conv_dim = gr.Slider(0, 128, value=0, step=1, label=t("Convolution Rank (0 = off)"),
                                         elem_id="modelmerger_lora_conv_dim")
                extract = gr.Button(t("Extract LoRA"), elem_id="modelmerger_extract_lora")
        with gr.Column(variant="compact"):
            result = gr.Markdown(elem_id="modelmerger_result")

    dropdowns = [primary, secondary, tertiary, top_checkpoint]

    def refreshed(*current):
        runtime.registry.refresh()
        choices = [info.name for info in runtime.registry.checkpoints()]
        return [gr.update(choices=choices, value=value if value in choices else None) for value in current]

    def on_merge(a, b, c, name, m, interp, half, metadata, config, vae_name, discard_text, *current,
                 progress=gr.Progress()):  # noqa: B008 - Gradio finds progress by this default
        def step(done: int, total: int, key: str) -> None:
            progress((done, total), desc=ui_text("Merging"), unit=ui_text("tensors"))
        try:
            message = run_merge(runtime, a, b, c, name, m, interp, half, metadata, config, vae_name, discard_text,
                                on_tensor=step)
        except UserInputError as error:
            raise ui_error(error) from None
        return [message, *refreshed(*current)]

    def on_extract(a, b, name, rank, conv_rank, progress=gr.Progress()):  # noqa: B008
        def step(done: int, total: int, layer: str) -> None:
            progress((done, total), desc=ui_text("Extracting"), unit=ui_text("layers"))
        try:
            return run_extract(runtime, a, b, name, rank, conv_rank, on_layer=step)
        except UserInputError as error:
            raise ui_error(error) from None

    refresh.click(refreshed, dropdowns, dropdowns, concurrency_limit=None)
    merge.click(on_merge, [primary, secondary, tertiary, custom_name, multiplier, method, save_as_half, save_metadata,
                           config_from, vae, discard, *dropdowns], [result, *dropdowns], api_name="modelmerger",
                concurrency_limit=1)
    extract.click(on_extract, [primary, secondary, lora_name, dim, conv_dim], [result], api_name="extract_lora",
                  concurrency_limit=1)
