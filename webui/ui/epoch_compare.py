"""Train → Run's "Compare epochs (X/Y/Z)": txt2img's X/Y/Z plot of one run's epoch files × LoRA weights."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import gradio as gr

from webui.errors import UserInputError
from webui.processing.runtime import Runtime
from webui.scripts.axes import lora_tags
from webui.scripts.values import join_values
from webui.training.outputs import epoch_names
from webui.ui.messages import ui_error

XYZ = "X/Y/Z plot"
X_AXIS, Y_AXIS, Z_AXIS = "LoRA file", "LoRA weight", "Nothing"
WEIGHTS = "0.4, 0.6, 0.8, 1.0"  # the strengths the tutorials compare each epoch at


@dataclass(frozen=True)
class EpochComparison:
    prompt: str
    files: list[str]  # LoRA names, first epoch first, the final file last
    choices: list[str]  # every LoRA the "LoRA file" axis offers


def prompt_with_lora(prompt: str, name: str, trigger: str, files: list[str]) -> str:
    """`prompt` with `<lora:name:1>` and the trigger word added, unless a tag of one of `files` is already there.

    The LoRA file axis swaps the prompt's first LoRA tag, so the new tag goes before any other LoRA's tag."""
    tags = lora_tags(prompt)
    if any(tag.group(2) in files for tag in tags):
        return prompt
    tag = f"<lora:{name}:1>"
    words = [word.strip() for word in prompt.split(",")]
    text = prompt.strip()
    if trigger.strip() and trigger.strip() not in words:
        text = f"{trigger.strip()}, {text}" if text else trigger.strip()
    others = lora_tags(text)
    if others:
        return f"{text[:others[0].start()]}{tag} {text[others[0].start():]}"
    return f"{text}, {tag}" if text else tag


def plan_comparison(runtime: Runtime, output_names: Sequence[str | None], trigger: str,
                    prompt: str) -> EpochComparison:
    """The epoch files of the first of `output_names` that has some in the LoRA library, and the txt2img prompt
    that uses them (the current/last run comes first, the form's output name after it)."""
    names = [name.strip() for name in output_names if name and name.strip()]
    if not names:
        raise UserInputError("Give the output name of a training run (or train one) to compare its epochs")
    choices = [entry.name for entry in runtime.loras.entries() if not entry.broken]
    for name in names:
        files = epoch_names(name, choices)
        if files:
            return EpochComparison(prompt_with_lora(prompt or "", files[-1], trigger or "", files), files, choices)
    raise UserInputError(f"No LoRA files named {names[-1]} or {names[-1]}-000001 … in the LoRA folder yet")


def comparison_updates(plan: EpochComparison) -> list[Any]:
    """Values for [tabs, prompt, script choice, X dropdown, X values, X type, Y values, Y type, Z type]."""
    return [gr.update(selected="txt2img"), plan.prompt, XYZ, gr.update(choices=plan.choices, value=plan.files,
                                                                       multiselect=True),
            join_values(plan.files), X_AXIS, WEIGHTS, Y_AXIS, Z_AXIS]


def wire_epoch_compare(runtime: Runtime, button: gr.Button, output_name: gr.components.Component,
                       trigger: gr.components.Component, last_run: Callable[[], str | None], txt: Any,
                       tabs: gr.Tabs) -> None:
    """The button fills txt2img's Script panel; `last_run` names the current/last run (else the form's name)."""
    xyz = txt.scripts.args[XYZ]  # [X type, X values, X dropdown, Y type, Y values, Y dropdown, Z type, …]
    outputs = [tabs, txt.prompts.prompt, txt.scripts.choice, xyz[2], xyz[1], xyz[0], xyz[4], xyz[3], xyz[6]]

    def on_compare(form_name: str, trigger_word: str, prompt: str) -> list[Any]:
        try:
            plan = plan_comparison(runtime, [last_run(), form_name], trigger_word, prompt)
        except UserInputError as error:
            raise ui_error(error) from None
        return comparison_updates(plan)

    button.click(on_compare, [output_name, trigger, txt.prompts.prompt], outputs, show_progress="hidden",
                 concurrency_limit=None)
