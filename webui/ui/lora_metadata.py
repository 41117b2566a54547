"""A LoRA card's "edit metadata" dialog (A1111's user sidecar) and its view of the ss_* training metadata."""
from __future__ import annotations

import html
from typing import Any, Callable, Mapping

import gradio as gr

from webui.errors import UserInputError
from webui.networks.errors import LoraNotFoundError
from webui.networks.library import LoraInfo, UserMetadata, tag_frequency, write_user_metadata
from webui.processing.runtime import Runtime
from webui.ui.i18n import t, translated_choices
from webui.ui.messages import catalogued, show_info, shown_error, ui_error, ui_message, ui_text

SD_VERSIONS = ("Unknown", "SD1", "SD2", "SDXL")
# (ss_* key, label) in the order A1111's metadata view lists the facts users look for first.
TRAINING_FIELDS = (
    ("ss_output_name", catalogued("Output name")), ("ss_sd_model_name", catalogued("Base model")),
    ("ss_base_model_version", catalogued("Base model version")), ("ss_network_module", catalogued("Network module")),
    ("ss_network_dim", catalogued("Network dim")), ("ss_network_alpha", catalogued("Network alpha")),
    ("ss_num_epochs", catalogued("Epochs")), ("ss_epoch", catalogued("Epoch")), ("ss_steps", catalogued("Steps")),
    ("ss_resolution", catalogued("Resolution")), ("ss_num_train_images", catalogued("Training images")),
    ("ss_learning_rate", catalogued("Learning rate")), ("ss_unet_lr", catalogued("UNet learning rate")),
    ("ss_text_encoder_lr", catalogued("Text encoder learning rate")), ("ss_lr_scheduler", catalogued("LR scheduler")),
    ("ss_optimizer", catalogued("Optimizer")), ("ss_clip_skip", catalogued("Clip skip")),
    ("ss_mixed_precision", catalogued("Mixed precision")), ("ss_seed", catalogued("Seed")),
    ("ss_training_comment", catalogued("Comment")),
)


def training_metadata_html(metadata: Mapping[str, str]) -> str:
    """Two tables: the training facts a kohya file carries, and its tag frequency, most frequent first."""
    rows = [(label, metadata[key]) for key, label in TRAINING_FIELDS if metadata.get(key) not in (None, "", "None")]
    if not rows and not metadata:
        return f"<div class='sdw-empty'>{ui_text('This file has no training metadata.')}</div>"
    parts = ["<table class='sdw-meta'><tbody>"]
    parts += [f"<tr><th>{html.escape(ui_message(label))}</th><td>{html.escape(str(value))}</td></tr>"
              for label, value in rows]
    parts.append("</tbody></table>")
    tags = tag_frequency(metadata)
    if tags:
        parts.append(f"<table class='sdw-meta sdw-tags'><thead><tr><th>{ui_text('Tag')}</th>"
                     f"<th>{ui_text('Count')}</th></tr></thead><tbody>")
        parts += [f"<tr><td>{html.escape(tag)}</td><td>{count}</td></tr>" for tag, count in tags]
        parts.append("</tbody></table>")
    return "".join(parts)


def _form_values(info: LoraInfo) -> list:
    user = info.user
    version = user.sd_version.upper() if user.sd_version.upper() in SD_VERSIONS[1:] else "Unknown"
    return [info.name, user.description, user.activation_text, user.preferred_weight, user.notes, version,
            training_metadata_html(info.metadata)]


def lora_metadata_dialog(prefix: str, runtime: Runtime, rerender: Callable[[], list], render_outputs: list) -> None:
    """The dialog, the hidden controls the card's 🛠 button drives, and Save writing `<stem>.json` atomically."""
    opener = gr.Textbox(elem_id=f"{prefix}_lora_edit_name", elem_classes="sdw-hidden", show_label=False)
    open_button = gr.Button(elem_id=f"{prefix}_lora_edit_button", elem_classes="sdw-hidden")
    with gr.Group(visible=False, elem_id=f"{prefix}_lora_edit", elem_classes="sdw-dialog") as dialog:
        title = gr.Textbox(label=t("LoRA"), interactive=False, elem_id=f"{prefix}_lora_edit_title")
        with gr.Row():
            with gr.Column():
                description = gr.Textbox(label=t("Description"), lines=2, elem_id=f"{prefix}_lora_edit_description")
                activation = gr.Textbox(label=t("Activation text"), elem_id=f"{prefix}_lora_edit_activation")
                weight = gr.Slider(0, 2, step=0.05, label=t("Preferred weight"),
                                   elem_id=f"{prefix}_lora_edit_weight")
                notes = gr.Textbox(label=t("Notes"), lines=2, elem_id=f"{prefix}_lora_edit_notes")
                version = gr.Dropdown(translated_choices(SD_VERSIONS, ("Unknown",)), label=t("Base model"),
                                      elem_id=f"{prefix}_lora_edit_sd")
                with gr.Row():
                    save = gr.Button(t("Save"), variant="primary", elem_id=f"{prefix}_lora_edit_save")
                    close = gr.Button(t("Close"), elem_id=f"{prefix}_lora_edit_close")
            with gr.Column():
                metadata = gr.HTML(elem_id=f"{prefix}_lora_metadata")
    fields = [title, description, activation, weight, notes, version, metadata]
    quick: dict[str, Any] = dict(show_progress="hidden", concurrency_limit=None)

    def on_open(text: str):
        name = (text or "").partition("\u0000")[0]
        try:
            info = runtime.loras.info(name)
        except LoraNotFoundError as error:
            raise ui_error(error) from None
        return [gr.update(visible=True), *_form_values(info)]

    def on_save(name, new_description, new_activation, new_weight, new_notes, new_version):
        try:
            info = runtime.loras.info(name)
            user = UserMetadata(activation_text=new_activation or "", preferred_weight=float(new_weight or 0),
                                negative_text=info.user.negative_text, notes=new_notes or "",
                                description=new_description or "",
                                sd_version="" if new_version in (None, "Unknown") else new_version)
            sidecar = write_user_metadata(info.path, user)
        except (LoraNotFoundError, UserInputError, OSError) as error:
            raise shown_error(ui_text("Could not save the metadata: {error}", error=ui_message(str(error)))) from None
        show_info(ui_text("Saved {file}", file=sidecar.name))
        return [gr.update(visible=False), *rerender()]

    open_button.click(on_open, [opener], [dialog, *fields], **quick)
    save.click(on_save, [title, description, activation, weight, notes, version], [dialog, *render_outputs],
               **quick)
    close.click(lambda: gr.update(visible=False), None, [dialog], **quick)
