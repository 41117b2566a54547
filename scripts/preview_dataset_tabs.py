"""Serve the Train → Dataset/Tagging sub-tabs and the Interrogate button on their own, to look at them.

    .venv/bin/python -m scripts.preview_dataset_tabs [--data-dir D] [--tagger-dir T] [--blip-dir B] [--port 7870]

Until these tabs sit inside the app's Train tab, this is the way to open them in a browser.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from webui.offline import enforce_offline

enforce_offline()

import gradio as gr  # noqa: E402 - after the offline switches

from webui.models.device import device_config  # noqa: E402
from webui.paths import REPO_ROOT, Folders  # noqa: E402
from webui.processing.runtime import Runtime, build_runtime  # noqa: E402
from webui.ui.interrogate_button import add_interrogate_button  # noqa: E402
from webui.ui.train_dataset_tab import build_dataset_tabs  # noqa: E402


def build_preview(runtime: Runtime) -> gr.Blocks:
    with gr.Blocks(title="Dataset tools") as demo:
        with gr.Tab("Train", elem_id="tab_train"), gr.Tabs():
            build_dataset_tabs(runtime)
        with gr.Tab("Interrogate", elem_id="tab_interrogate"):
            image = gr.Image(type="pil", label="Image", elem_id="img2img_image", sources=["upload", "clipboard"])
            prompt = gr.Textbox(label="Prompt", elem_id="img2img_prompt")
            add_interrogate_button(runtime, image, prompt)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT)
    parser.add_argument("--tagger-dir", type=Path, default=REPO_ROOT / "models" / "tagger")
    parser.add_argument("--blip-dir", type=Path, default=REPO_ROOT / "models" / "BLIP")
    parser.add_argument("--port", type=int, default=7870)
    args = parser.parse_args()
    folders = Folders(data=args.data_dir, outputs=args.data_dir / "outputs", taggers=args.tagger_dir,
                      blip=args.blip_dir)
    runtime = build_runtime(folders, device_config(device="cpu"), hashing=False)
    build_preview(runtime).queue().launch(server_name="127.0.0.1", server_port=args.port)


if __name__ == "__main__":
    main()
