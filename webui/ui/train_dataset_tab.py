"""Train → Dataset and Tagging sub-tabs: build kohya's folder layout from photos, caption them, edit the tags."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from webui.errors import UserInputError
from webui.processing.jobs import JobState
from webui.processing.runtime import Runtime
from webui.training.buckets import BucketSettings
from webui.training.captioning import make_captioner
from webui.training.dataset import folder_subsets, scan
from webui.training.interrogate import Interrogator, app_interrogator
from webui.training.preprocess import CropMode, PreprocessOptions, image_files, preprocess_images, subset_folder_name
from webui.training.tagger import DEFAULT_CHARACTER_THRESHOLD, DEFAULT_GENERAL_THRESHOLD, TagSettings
from webui.ui.i18n import t, translated_choices
from webui.ui.messages import ui_error, ui_message, ui_text
from webui.ui.train_tagging_tab import build_tagging_tab, model_choices

NO_CAPTIONS = "None (class tokens become the caption)"
PREVIEW_LIMIT = 200  # images shown in the preview gallery; counts always cover the whole folder


def dataset_overview(train_data_dir: str, batch_size: float, epochs: float) -> tuple[str, list[tuple[str, str]]]:
    """A Markdown table of images × repeats → steps (the trainer's own count), and the gallery (image, caption)."""
    subsets, warnings = folder_subsets(Path(train_data_dir.strip()))
    plan = scan(subsets, BucketSettings(), warnings)
    batch, epoch_count = int(batch_size or 1), int(epochs or 1)
    rows = []
    for subset in plan.subsets:
        items = [item for item in plan.items if item.subset is subset]
        captioned = sum(1 for item in items if item.path.with_suffix(subset.caption_extension).is_file())
        rows.append(f"| {subset.image_dir.name} | {len(items)} | {subset.num_repeats} | "
                    f"{len(items) * subset.num_repeats} | {captioned} |")
    gallery = [(str(item.path), item.caption) for item in plan.items[:PREVIEW_LIMIT]]
    header = ui_text("| folder | images | repeats | images × repeats | captions |")
    table = "\n".join([header, "|---|---|---|---|---|", *rows])
    per_epoch = plan.batches_per_epoch(batch)
    summary = ui_text("**{images} images, {per_epoch_images} per epoch (images × repeats) → {per_epoch} steps per "
                      "epoch at batch size {batch} → {steps} steps in {epochs} epoch(s).**",
                      images=len(plan.train_items), per_epoch_images=plan.num_train_images, per_epoch=per_epoch,
                      batch=batch, steps=plan.total_steps(batch, 1, epoch_count), epochs=epoch_count)
    skipped = "".join("\n- " + ui_text("skipped {file}: {reason}", file=p.path.name, reason=ui_message(p.reason))
                      for p in plan.problems)
    notes = "".join(f"\n- {ui_message(w)}" for w in plan.warnings)
    return f"{summary}\n\n{table}{skipped}{notes}", gallery


def create_dataset(interrogator: Interrogator, uploads: list[str] | None, source_folder: str, train_data_dir: str,
                   repeats: float, trigger: str, class_tokens: str, width: float, height: float, crop: str,
                   faces: bool, flip: bool, split: bool, min_side: float, caption_model: str, general: float,
                   character: float, excluded: str, progress: gr.Progress | None = None) -> str:
    """Preprocess the uploaded files and/or a source folder into `<train_data_dir>/<repeats>_<trigger> <class>/`."""
    sources = [Path(path) for path in uploads or []]
    if source_folder and source_folder.strip():
        sources += image_files(Path(source_folder.strip()))
    if not sources:
        raise UserInputError("Upload images or give a folder of images first")
    if not train_data_dir or not train_data_dir.strip():
        raise UserInputError("Give the training folder (train_data_dir) to write into")
    subset = subset_folder_name(int(repeats or 0), trigger, class_tokens)
    options = PreprocessOptions(width=int(width), height=int(height), crop=CropMode(crop), detect_faces=bool(faces),
                                flip_copies=bool(flip), split_oversized=bool(split), min_side=int(min_side or 1))
    captioner = None
    if caption_model and caption_model != NO_CAPTIONS:
        settings = TagSettings(general_threshold=float(general), character_threshold=float(character),
                               excluded=TagSettings.parse_excluded(excluded or ""), trigger=trigger.strip())
        captioner = make_captioner(interrogator, caption_model, settings)

    def report_progress(done: int, total: int, name: str) -> None:
        if progress is not None:
            progress((done, total), desc=ui_text("Preparing {file}", file=name))

    report = preprocess_images(sources, Path(train_data_dir.strip()), subset, options, captioner, report_progress)
    return (ui_text("Into {folder}:", folder=Path(train_data_dir.strip()) / subset) + "\n\n"
            + ui_message(report.summary()).replace("\n- ", "\n\n- "))


def _build_dataset_tab(runtime: Runtime, interrogator: Interrogator) -> None:
    default_dir = str(runtime.folders.data / "training" / "img")
    with gr.Row():
        with gr.Column():
            uploads = gr.File(label=t("Images"), file_count="multiple", file_types=["image"],
                              elem_id="train_dataset_uploads")
            source = gr.Textbox(label=t("Or a folder of images"), elem_id="train_dataset_source")
            target = gr.Textbox(default_dir, label=t("Training folder (train_data_dir)"), elem_id="train_dataset_dir")
            with gr.Row():
                repeats = gr.Number(10, precision=0, minimum=1, label=t("Repeats"), elem_id="train_dataset_repeats")
                trigger = gr.Textbox(label=t("Trigger word"), placeholder=t("sks"), elem_id="train_dataset_trigger")
                class_tokens = gr.Textbox(label=t("Class"), placeholder=t("dog"), elem_id="train_dataset_class")
            with gr.Accordion(t("Preprocessing"), open=True):
                with gr.Row():
                    width = gr.Slider(64, 2048, value=512, step=64, label=t("Width"))
                    height = gr.Slider(64, 2048, value=512, step=64, label=t("Height"))
                crop = gr.Radio(translated_choices(mode.value for mode in CropMode), value=CropMode.FOCAL.value,
                            label=t("Crop"))
                with gr.Row():
                    faces = gr.Checkbox(True, label=t("Find faces for the focal point"))
                    flip = gr.Checkbox(False, label=t("Create flipped copies"))
                    split = gr.Checkbox(False, label=t("Split oversized images"))
                    min_side = gr.Number(64, precision=0, label=t("Skip images smaller than (px)"))
            with gr.Accordion(t("Captions"), open=True):
                captioners = translated_choices([NO_CAPTIONS, *model_choices(interrogator)], only={NO_CAPTIONS})
                caption_model = gr.Dropdown(captioners, value=NO_CAPTIONS, label=t("Caption with"),
                                            elem_id="train_dataset_caption_model")
                with gr.Row():
                    general = gr.Slider(0, 1, value=DEFAULT_GENERAL_THRESHOLD, step=0.01,
                                        label=t("General tag threshold"))
                    character = gr.Slider(0, 1, value=DEFAULT_CHARACTER_THRESHOLD, step=0.01,
                                          label=t("Character tag threshold"))
                excluded = gr.Textbox(label=t("Excluded tags"), placeholder=t("simple background, white background"))
            create = gr.Button(t("Create dataset"), variant="primary", elem_id="train_dataset_create")
        with gr.Column():
            with gr.Row():
                batch = gr.Number(1, precision=0, minimum=1, label=t("Batch size"))
                epochs = gr.Number(10, precision=0, minimum=1, label=t("Epochs"))
                show = gr.Button(t("Show dataset"), elem_id="train_dataset_show")
            status = gr.Markdown(elem_id="train_dataset_status")
            counts = gr.Markdown(elem_id="train_dataset_counts")
            gallery = gr.Gallery(label=t("Dataset"), columns=5, height=480, elem_id="train_dataset_gallery")

    def on_show(folder: str, batch_size: float, epoch_count: float):
        try:
            return dataset_overview(folder, batch_size, epoch_count)
        except UserInputError as error:
            raise ui_error(error) from None

    def on_create(files, folder, train_dir, repeat_count, trigger_word, tokens, w, h, crop_mode, use_faces,
                  flipped, split_big, smallest, model, general_threshold, character_threshold, excluded_tags,
                  batch_size, epoch_count, progress=gr.Progress()):  # noqa: B008 - how Gradio injects progress
        try:
            # In the one queue: a tagger or BLIP model on the GPU must not fight a generation for memory.
            report = runtime.queue.run(JobState(), lambda: create_dataset(
                interrogator, files, folder, train_dir, repeat_count, trigger_word, tokens, w, h, crop_mode, use_faces,
                flipped, split_big, smallest, model, general_threshold, character_threshold, excluded_tags,
                progress=progress))
            table, items = dataset_overview(train_dir, batch_size, epoch_count)
        except UserInputError as error:
            raise ui_error(error) from None
        return report, table, items

    show.click(on_show, [target, batch, epochs], [counts, gallery])
    create.click(on_create, [uploads, source, target, repeats, trigger, class_tokens, width, height, crop, faces, flip,
                             split, min_side, caption_model, general, character, excluded, batch, epochs],
                 [status, counts, gallery], concurrency_limit=1)


def build_dataset_tabs(runtime: Runtime) -> None:
    """The "Dataset" and "Tagging" sub-tabs, inside the gr.Tabs the caller has opened (the Train tab's)."""
    interrogator = app_interrogator(runtime)
    with gr.Tab(t("Dataset"), id="train_dataset", elem_id="train_dataset_tab"):
        _build_dataset_tab(runtime, interrogator)
    with gr.Tab(t("Tagging"), id="train_tagging", elem_id="train_tagging_tab"):
        build_tagging_tab(runtime, interrogator)
