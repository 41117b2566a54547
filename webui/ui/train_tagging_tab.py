"""Train → Tagging sub-tab: run a tagger or BLIP over a folder, then edit captions one by one or in batches."""
from __future__ import annotations

from enum import Enum
from pathlib import Path

import gradio as gr

from webui.errors import UserInputError
from webui.processing.jobs import JobState
from webui.processing.runtime import Runtime
from webui.training.captioning import ExistingCaption, caption_folder, image_folders, make_captioner
from webui.training.interrogate import Interrogator
from webui.training.tagger import DEFAULT_CHARACTER_THRESHOLD, DEFAULT_GENERAL_THRESHOLD, TagSettings
from webui.training.tags import (
    CaptionEntry,
    Match,
    Position,
    add_tags,
    frequency,
    keep_tokens_prefix,
    load_captions,
    move_to_front,
    remove_tags,
    replace_tag,
    save_captions,
    search,
    set_caption,
    split_tags,
)
from webui.ui.i18n import t, translated_choices
from webui.ui.messages import ui_error, ui_message, ui_text


class BatchOperation(str, Enum):
    ADD_FRONT = "add at the front"
    ADD_BACK = "add at the back"
    REMOVE = "remove"
    MOVE_FRONT = "move to the front"
    REPLACE = "replace"


class Scope(str, Enum):
    SHOWN = "images shown (search results)"
    ALL = "all images"


def model_choices(interrogator: Interrogator) -> list[str]:
    return interrogator.taggers.names() + interrogator.blip.names()


def missing_models_hint(interrogator: Interrogator) -> str:
    if model_choices(interrogator):
        return ""
    return f"{interrogator.taggers.hint()}\n\n{interrogator.blip.hint()}"


NO_MODELS = ("No tagger or BLIP model found. Put a WD14 tagger (for example wd-v1-4-convnext-tagger-v2: model.onnx + "
             "selected_tags.csv) or the files of a transformers BLIP captioning model (for example "
             "Salesforce/blip-image-captioning-base) into a folder of its own in one of the folders below, then press "
             "🔄. Nothing is downloaded.")


def model_folders(interrogator: Interrogator) -> str:
    """Where taggers and BLIP models go: paths stay as they are, so they are shown apart from the translated hint."""
    return f"{interrogator.taggers.folder}/<name>/\n{interrogator.blip.folder}/<name>/"


def _hint_text(interrogator: Interrogator):
    return t(NO_MODELS) if not model_choices(interrogator) else ""


def run_tagging(interrogator: Interrogator, folder: str, model: str, general: float, character: float,
                excluded: str, trigger: str, existing: str, progress: gr.Progress | None = None) -> str:
    if not folder or not folder.strip():
        raise UserInputError("Give the folder of images to tag")
    if not model:
        raise UserInputError(missing_models_hint(interrogator) or "Choose a tagger")
    settings = TagSettings(general_threshold=float(general), character_threshold=float(character),
                           excluded=TagSettings.parse_excluded(excluded or ""), trigger=(trigger or "").strip())
    captioner = make_captioner(interrogator, model, settings)

    def report_progress(done: int, total: int, name: str) -> None:
        if progress is not None:
            progress((done, total), desc=ui_text("Tagging {file}", file=name))

    root = Path(folder.strip())
    if not root.is_dir():
        raise UserInputError(f"{root} is not a folder")
    return ui_message(caption_folder(root, captioner, ExistingCaption(existing), report_progress).summary())


def folder_entries(folder: str) -> list[CaptionEntry]:
    """Captions of a subset folder, or of every subset folder of a train_data_dir."""
    root = Path((folder or "").strip())
    if not folder or not root.is_dir():
        raise UserInputError(f"{folder!r} is not a folder")
    return [entry for sub in image_folders(root) for entry in load_captions(sub)]


def editor_view(folder: str, query: str, match: str, text: str, keep_tokens: float = 1):
    """Frequency table rows, gallery items, the paths shown, and the keep_tokens check."""
    entries = folder_entries(folder)
    shown = search(entries, split_tags(query or ""), Match(match), text or "")
    table = [[tag, count] for tag, count in frequency(entries)]
    prefixes = keep_tokens_prefix(entries, int(keep_tokens or 0))
    note = "" if not prefixes else (
        ui_text("First {count} tag(s) of each caption (kept in place by keep_tokens): ", count=int(keep_tokens)) +
        ", ".join(f"`{prefix or ui_text('(empty)')}` × {count}" for prefix, count in prefixes.most_common(5)))
    gallery = [(str(entry.image), ", ".join(entry.tags)) for entry in shown]
    found = ui_text("{shown} of {total} image(s). ", shown=len(shown), total=len(entries))
    return table, gallery, [str(entry.image) for entry in shown], found + note


def apply_batch(folder: str, shown: list[str], scope: str, operation: str, tags: str, old: str, new: str) -> str:
    """Apply one batch operation to the chosen images and save them (atomic writes, old captions kept as .bak)."""
    entries = folder_entries(folder)
    chosen = entries if Scope(scope) is Scope.ALL else [entry for entry in entries if str(entry.image) in set(shown)]
    tag_list = split_tags(tags or "")
    kind = BatchOperation(operation)
    if kind is BatchOperation.REPLACE:
        if not (old or "").strip():
            raise UserInputError("Give the tag to replace")
        replace_tag(chosen, old, new or "")
    elif not tag_list:
        raise UserInputError("Give the tags, separated by commas")
    elif kind in (BatchOperation.ADD_FRONT, BatchOperation.ADD_BACK):
        add_tags(chosen, tag_list, Position.FRONT if kind is BatchOperation.ADD_FRONT else Position.BACK)
    elif kind is BatchOperation.REMOVE:
        remove_tags(chosen, tag_list)
    else:
        move_to_front(chosen, tag_list)
    saved = save_captions(chosen)
    return ui_text("Saved {saved} caption(s) of {images} image(s) ({operation}).", saved=saved, images=len(chosen),
                   operation=ui_message(kind.value))


def save_one(folder: str, image: str, text: str) -> str:
    entries = [entry for entry in folder_entries(folder) if str(entry.image) == image]
    if not entries:
        raise UserInputError("Pick an image in the gallery first")
    set_caption(entries[0], text or "")
    return ui_text("Saved {file}", file=Path(image).name) if save_captions(entries) else ui_text("No change")


def build_tagging_tab(runtime: Runtime, interrogator: Interrogator) -> None:
    default_dir = str(runtime.folders.data / "training" / "img")
    choices = model_choices(interrogator)
    hint = gr.Markdown(_hint_text(interrogator), elem_id="train_tagging_hint")
    folders = gr.Textbox(model_folders(interrogator), label=t("Where to put the models"), lines=2, interactive=False,
                         visible=not choices, elem_id="train_tagging_model_folders")
    folder = gr.Textbox(default_dir, label=t("Image folder (one <repeats>_<name> folder, or its parent)"),
                        elem_id="train_tagging_folder")
    with gr.Accordion(t("Auto-tag"), open=True):
        with gr.Row():
            model = gr.Dropdown(choices, value=choices[0] if choices else None, label=t("Tagger"),
                                elem_id="train_tagging_model", scale=3)
            refresh = gr.Button("🔄", elem_classes="sdw-tool", scale=0, min_width=40)
            existing = gr.Radio(translated_choices(mode.value for mode in ExistingCaption),
                                value=ExistingCaption.OVERWRITE.value,
                                label=t("Existing captions"), scale=3)
        with gr.Row():
            general = gr.Slider(0, 1, value=DEFAULT_GENERAL_THRESHOLD, step=0.01, label=t("General tag threshold"))
            character = gr.Slider(0, 1, value=DEFAULT_CHARACTER_THRESHOLD, step=0.01,
                                  label=t("Character tag threshold"))
        with gr.Row():
            trigger = gr.Textbox(label=t("Trigger word (written first)"), elem_id="train_tagging_trigger")
            excluded = gr.Textbox(label=t("Excluded tags"), elem_id="train_tagging_excluded")
        run = gr.Button(t("Tag images"), variant="primary", elem_id="train_tagging_run")
    status = gr.Markdown(elem_id="train_tagging_status")
    with gr.Row():
        with gr.Column(scale=1):
            load = gr.Button(t("Load captions"), elem_id="train_tagging_load")
            frequencies = gr.Dataframe(headers=["tag", "images"], datatype=["str", "number"], interactive=False,
                                       label=t("Tag frequency"), elem_id="train_tagging_frequency")
        with gr.Column(scale=2):
            with gr.Row():
                query = gr.Textbox(label=t("Search tags"), placeholder=t("1girl, smile"), scale=3)
                match = gr.Radio(translated_choices(m.value for m in Match), value=Match.ALL.value, label=t("Match"),
                                 scale=1)
                text = gr.Textbox(label=t("Text or file name"), scale=2)
                keep_tokens = gr.Number(1, precision=0, minimum=0, label=t("keep_tokens"), scale=1)
            info = gr.Markdown(elem_id="train_tagging_info")
            gallery = gr.Gallery(label=t("Images"), columns=6, height=360, elem_id="train_tagging_gallery")
            shown = gr.State([])
            selected = gr.State("")
            with gr.Row():
                caption = gr.Textbox(label=t("Caption of the selected image"), scale=4, elem_id="train_tagging_caption")
                save = gr.Button(t("Save caption"), scale=1, elem_id="train_tagging_save")
            with gr.Accordion(t("Batch edit"), open=True):
                with gr.Row():
                    operation = gr.Radio(translated_choices(op.value for op in BatchOperation),
                                         value=BatchOperation.ADD_FRONT.value,
                                         label=t("Operation"))
                    scope = gr.Radio(translated_choices(s.value for s in Scope), value=Scope.SHOWN.value,
                                     label=t("Apply to"))
                tags = gr.Textbox(label=t("Tags"), placeholder=t("sks, 1girl"), elem_id="train_tagging_batch_tags")
                with gr.Row():
                    old = gr.Textbox(label=t("Replace tag"))
                    new = gr.Textbox(label=t("With (empty removes it)"))
                apply = gr.Button(t("Apply and save"), elem_id="train_tagging_apply")

    view_inputs = [folder, query, match, text, keep_tokens]
    view_outputs = [frequencies, gallery, shown, info]

    def guarded(function):
        def call(*values):
            try:
                return function(*values)
            except UserInputError as error:
                raise ui_error(error) from None
        return call

    def on_run(folder_value, model_value, general_value, character_value, excluded_value, trigger_value,
               existing_value, progress=gr.Progress()):  # noqa: B008 - how Gradio injects progress
        try:
            return runtime.queue.run(JobState(), lambda: run_tagging(
                interrogator, folder_value, model_value, general_value, character_value, excluded_value,
                trigger_value, existing_value, progress))
        except UserInputError as error:
            raise ui_error(error) from None

    def on_refresh():
        names = model_choices(interrogator)
        return (gr.update(choices=names, value=names[0] if names else None), _hint_text(interrogator),
                gr.update(visible=not names))

    def on_pick(folder_value: str, paths: list[str], event: gr.SelectData):
        index = event.index if isinstance(event.index, int) else -1
        path = paths[index] if 0 <= index < len(paths) else ""
        entry = next((e for e in folder_entries(folder_value) if str(e.image) == path), None)
        return path, ", ".join(entry.tags) if entry else ""

    refresh.click(on_refresh, None, [model, hint, folders], show_progress="hidden")
    run.click(on_run, [folder, model, general, character, excluded, trigger, existing], [status],
              concurrency_limit=1).then(guarded(editor_view), view_inputs, view_outputs)
    # `input`, not `change`: the page switching to its language re-sets the radio, which must not run a search.
    for event in (load.click, query.submit, text.submit, match.input):
        event(guarded(editor_view), view_inputs, view_outputs)
    gallery.select(on_pick, [folder, shown], [selected, caption], show_progress="hidden")
    save.click(guarded(save_one), [folder, selected, caption], [status]).then(guarded(editor_view), view_inputs,
                                                                                view_outputs)
    apply.click(guarded(apply_batch), [folder, shown, scope, operation, tags, old, new], [status]).then(
        guarded(editor_view), view_inputs, view_outputs)
