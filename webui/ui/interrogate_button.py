"""img2img's "Interrogate" button: the chosen tagger or BLIP model describes the image into the prompt."""
from __future__ import annotations

import gradio as gr
from PIL import Image

from webui.errors import UserInputError
from webui.processing.jobs import JobState
from webui.processing.runtime import Runtime
from webui.training.interrogate import DEEPDANBOORU, app_interrogator
from webui.ui.i18n import t
from webui.ui.messages import shown_error, ui_error, ui_message, ui_text


def add_interrogate_button(runtime: Runtime, image: gr.Image, prompt: gr.Textbox) -> gr.Button:
    """A model choice and a button under `image`; the answer replaces the text of `prompt`."""
    interrogator = app_interrogator(runtime)
    names = interrogator.model_names()
    with gr.Row(elem_id="img2img_interrogate_row"):
        model = gr.Dropdown(names, value=DEEPDANBOORU if DEEPDANBOORU in names else (names[0] if names else None),
                            label=t("Interrogate with"), allow_custom_value=True, scale=3,
                            elem_id="img2img_interrogate_model")
        button = gr.Button(t("Interrogate"), elem_id="img2img_interrogate", scale=1, min_width=100)

    def on_interrogate(picture: Image.Image | None, name: str | None) -> tuple[str, gr.Dropdown]:
        choices = gr.Dropdown(choices=interrogator.model_names())  # models dropped in since start appear here
        if picture is None:
            raise shown_error(ui_text("Put an image into img2img first"))
        if not interrogator.model_names():
            raise shown_error(ui_message(interrogator.taggers.hint()) + " " + ui_message(interrogator.blip.hint()))
        try:
            caption = runtime.queue.run(JobState(), lambda: interrogator.interrogate(picture, name or DEEPDANBOORU))
        except UserInputError as error:
            raise ui_error(error) from None
        return caption, choices

    button.click(on_interrogate, [image, model], [prompt, model], show_progress="minimal")
    return button
