"""Train → Dataset and Tagging sub-tabs: build kohya's folder layout from photos, caption them, edit the tags."""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from webui.errors import UserInputError
from webui.processing.jobs import JobState
from webui.processing.runtime import Runtime
from webui.training.captioning import make_captioner
from webui.training.interrogate import Interrogator
from webui.training.preprocess import CropMode, PreprocessOptions, image_files, preprocess_images, subset_folder_name
from webui.training.tagger import DEFAULT_CHARACTER_THRESHOLD, DEFAULT_GENERAL_THRESHOLD, TagSettings
from webui.training.tags import join_tags, read_caption
from webui.ui.i18n import t
from webui.ui.train_tagging_tab import build_tagging_tab, model_choices

NO_CAPTIONS = "None (class tokens become the caption)"
PREVIEW_LIMIT = 200  # images shown in the preview gallery; counts always cover the whole folder
SUBSET_NAME = re.compile(r"^(\d+)_(.+)$")


@dataclass(frozen=True)
class StepEstimate:
    images: int
    images_x_repeats: int
    steps_per_epoch: int
    total_steps: int


def local_step_estimate(subsets: Sequence[tuple[int, int]], batch_size: int, epochs: int) -> StepEstimate:
    """images × repeats → steps: the plain count (no bucket rounding), until the dataset module's count replaces it."""
    images = sum(count for count, _ in subsets)
    weighted = sum(count * repeats for count, repeats in subsets)
    per_epoch = math.ceil(weighted / max(1, batch_size))
    return StepEstimate(images, weighted, per_epoch, per_epoch * max(1, epochs))


def subset_folders(train_data_dir: Path) -> list[tuple[Path, int, str]]:
    """(folder, repeats, class tokens) of the `<repeats>_<tokens>` folders; kohya's hint for the classic mistake."""
    if not train_data_dir.is_dir():
        raise UserInputError(f"{train_data_dir} is not a folder")
    found = []
    for folder in sorted(train_data_dir.iterdir()):
        match = SUBSET_NAME.match(folder.name)
        if folder.is_dir() and match and int(match.group(1)) > 0:
            found.append((folder, int(match.group(1)), match.group(2)))
    if not found:
        if SUBSET_NAME.match(train_data_dir.name) and image_files(train_data_dir):
            raise UserInputError(f"No data found: {train_data_dir.name} is an image folder itself. The training "
                                 f"folder (train_data_dir) must be its parent, {train_data_dir.parent}")
        raise UserInputError(f"No <repeats>_<name> folders (like 10_sks dog) in {train_data_dir}")
    return found


def dataset_overview(train_data_dir: str, batch_size: float, epochs: float) -> tuple[str, list[tuple[str, str]]]:
    """A Markdown table of images × repeats → steps, and the gallery items (image, caption or class tokens)."""
    subsets = subset_folders(Path(train_data_dir.strip()))
    rows: list[str] = []
    gallery: list[tuple[str, str]] = []
    counts: list[tuple[int, int]] = []
    for folder, repeats, tokens in subsets:
        images = image_files(folder)
        counts.append((len(images), repeats))
        captioned = sum(1 for image in images if image.with_suffix(".txt").is_file())
        rows.append(f"| {folder.name} | {len(images)} | {repeats} | {len(images) * repeats} | {captioned} |")
        for image in images:
            if len(gallery) < PREVIEW_LIMIT:
                gallery.append((str(image), join_tags(read_caption(image.with_suffix(".txt"))) or tokens))
    estimate = local_step_estimate(counts, int(batch_size or 1), int(epochs or 1))
    table = "\n".join(["| folder | images | repeats | images × repeats | captions |", "|---|---|---|---|---|", *rows])
    summary = (f"**{estimate.images} images, {estimate.images_x_repeats} per epoch (images × repeats) → "
               f"{estimate.steps_per_epoch} steps per epoch at batch size {int(batch_size or 1)} → "
               f"{estimate.total_steps} steps in {int(epochs or 1)} epoch(s).**")
    return f"{summary}\n\n{table}", gallery


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
            progress((done, total), desc=f"Preparing {name}")

    report = preprocess_images(sources, Path(train_data_dir.strip()), subset, options, captioner, report_progress)
    return f"Into {Path(train_data_dir.strip()) / subset}:\n\n" + report.summary().replace("\n- ", "\n\n- ")


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
                trigger = gr.Textbox(label=t("Trigger word"), placeholder="sks", elem_id="train_dataset_trigger")
                class_tokens = gr.Textbox(label=t("Class"), placeholder="dog", elem_id="train_dataset_class")
            with gr.Accordion(t("Preprocessing"), open=True):
                with gr.Row():
                    width = gr.Slider(64, 2048, value=512, step=64, label=t("Width"))
                    height = gr.Slider(64, 2048, value=512, step=64, label=t("Height"))
                crop = gr.Radio([mode.value for mode in CropMode], value=CropMode.FOCAL.value, label=t("Crop"))
                with gr.Row():
                    faces = gr.Checkbox(True, label=t("Find faces for the focal point"))
                    flip = gr.Checkbox(False, label=t("Create flipped copies"))
                    split = gr.Checkbox(False, label=t("Split oversized images"))
                    min_side = gr.Number(64, precision=0, label=t("Skip images smaller than (px)"))
            with gr.Accordion(t("Captions"), open=True):
                caption_model = gr.Dropdown([NO_CAPTIONS, *model_choices(interrogator)], value=NO_CAPTIONS,
                                            label=t("Caption with"), elem_id="train_dataset_caption_model")
                with gr.Row():
                    general = gr.Slider(0, 1, value=DEFAULT_GENERAL_THRESHOLD, step=0.01,
                                        label=t("General tag threshold"))
                    character = gr.Slider(0, 1, value=DEFAULT_CHARACTER_THRESHOLD, step=0.01,
                                          label=t("Character tag threshold"))
                excluded = gr.Textbox(label=t("Excluded tags"), placeholder="simple background, white background")
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
            raise gr.Error(str(error)) from None

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
            raise gr.Error(str(error)) from None
        return report, table, items

    show.click(on_show, [target, batch, epochs], [counts, gallery])
    create.click(on_create, [uploads, source, target, repeats, trigger, class_tokens, width, height, crop, faces, flip,
                             split, min_side, caption_model, general, character, excluded, batch, epochs],
                 [status, counts, gallery], concurrency_limit=1)


def build_dataset_tabs(runtime: Runtime) -> None:
    """The "Dataset" and "Tagging" sub-tabs, inside whatever tab the caller has opened."""
    interrogator = Interrogator(runtime.folders.taggers, runtime.folders.blip, str(runtime.models.device.device))
    with gr.Tabs(elem_id="train_dataset_tabs"):
        with gr.Tab(t("Dataset"), id="train_dataset", elem_id="train_dataset_tab"):
            _build_dataset_tab(runtime, interrogator)
        with gr.Tab(t("Tagging"), id="train_tagging", elem_id="train_tagging_tab"):
            build_tagging_tab(runtime, interrogator)
