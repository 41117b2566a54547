"""The "Script" dropdown of txt2img/img2img and each script's controls, built from the shared script API."""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable

import gradio as gr

from webui.processing.jobs import JobState
from webui.processing.request import GenerationRequest
from webui.processing.results import GenerationResult
from webui.processing.runtime import Runtime
from webui.processing.styles import StyleStore
from webui.scripts import SCRIPTS, ScriptContext, run_script
from webui.scripts.axes import axes_for, find_axis
from webui.scripts.values import join_values
from webui.ui.i18n import t, translated_choices

NONE = "None"
FILL_SYMBOL = "\U0001f4d2"  # 📒, A1111's "fill the values" button
# Differences from the API defaults, for the page only: cells are listed after the grid so one can be picked.
UI_DEFAULTS = MappingProxyType({("X/Y/Z plot", "include_lone_images"): True})


@dataclass
class ScriptsPanel:
    choice: gr.Dropdown
    args: dict[str, list[gr.components.Component]]  # script title → its controls in script_args order
    to_txt2img: gr.Button

    @property
    def inputs(self) -> set:
        return {self.choice, *(component for components in self.args.values() for component in components)}

    def work(self, data: dict, runtime: Runtime, styles: StyleStore, mode: str,
             request: GenerationRequest) -> Callable[[JobState], GenerationResult] | None:
        """The job for Generate when a script is chosen (None: a plain generation)."""
        title = data[self.choice]
        if not title or title == NONE:
            return None
        values = [data[component] for component in self.args[title]]
        context = ScriptContext(runtime, mode, styles)
        return lambda running: run_script(title, values, request, context, running)


def _control(prefix: str, title: str, arg: Any) -> gr.components.Component:
    value = UI_DEFAULTS.get((title, arg.name), arg.value)
    elem_id = f"{prefix}_script_{title.split()[0].replace('/', '').lower()}_{arg.name}"
    if isinstance(arg.value, bool):
        return gr.Checkbox(label=t(arg.label), value=value, elem_id=elem_id)
    if arg.minimum is not None:
        return gr.Slider(arg.minimum, arg.maximum, value=value, step=arg.step, label=t(arg.label), elem_id=elem_id)
    if arg.choices:
        return gr.Radio(translated_choices(arg.choices), value=value, label=t(arg.label), elem_id=elem_id)
    lines = 4 if arg.name == "prompt_txt" else 1
    return gr.Textbox(label=t(arg.label), value=value, lines=lines, elem_id=elem_id)


@dataclass
class AxisRow:
    kind: gr.Dropdown
    text: gr.Textbox
    picked: gr.Dropdown
    fill: gr.Button


def _axis_row(prefix: str, mode: str, axis: str, default: int) -> AxisRow:
    labels = [a.label for a in axes_for(mode)]
    with gr.Row():
        kind = gr.Dropdown(translated_choices(labels), value=labels[default], label=t(f"{axis} type"),
                           elem_id=f"{prefix}_xyz_{axis}_type")
        text = gr.Textbox(label=t(f"{axis} values"), lines=1, elem_id=f"{prefix}_xyz_{axis}_values")
        picked = gr.Dropdown([], value=[], multiselect=True, visible=False, label=t(f"{axis} values"),
                             elem_id=f"{prefix}_xyz_{axis}_values_dropdown", allow_custom_value=True)
        fill = gr.Button(FILL_SYMBOL, visible=False, size="sm", min_width=40, elem_id=f"{prefix}_xyz_{axis}_fill")
    return AxisRow(kind, text, picked, fill)


def _wire_axis(row: AxisRow, csv_mode: gr.Checkbox, context: ScriptContext) -> None:
    """List-valued axes (samplers, checkpoints, LoRA files…) get a multi-select and the fill button."""

    def choices_of(name: str) -> list[str] | None:
        found = find_axis(context.mode, name)
        return found.choices(context) if found.choices is not None else None

    def on_type(name: str, csv: bool):
        choices = choices_of(name)
        listed = choices is not None and not csv
        return (gr.update(visible=not listed), gr.update(choices=choices or [], visible=listed),
                gr.update(visible=choices is not None))

    def on_fill(name: str, csv: bool):
        choices = choices_of(name) or []
        if csv:
            return join_values(choices), gr.skip()
        return gr.skip(), gr.update(choices=choices, value=choices)

    row.kind.change(on_type, [row.kind, csv_mode], [row.text, row.picked, row.fill], show_progress="hidden",
                    concurrency_limit=None)
    # Only a type the user picks drops the old picks: a handler that sets a type sets its picks with it, and this
    # page runs the change event above before it has taken those picks in.
    row.kind.input(lambda: gr.update(value=[]), None, [row.picked], show_progress="hidden", concurrency_limit=None)
    row.fill.click(on_fill, [row.kind, csv_mode], [row.text, row.picked], show_progress="hidden",
                   concurrency_limit=None)


def _xyz_controls(prefix: str, mode: str, runtime: Runtime, styles: StyleStore) -> list[gr.components.Component]:
    spec = next(script for script in SCRIPTS if script.title == "X/Y/Z plot").spec(mode)
    rows = [_axis_row(prefix, mode, axis, default) for axis, default in (("X", 1), ("Y", 0), ("Z", 0))]
    with gr.Row():
        checks = [_control(prefix, "X/Y/Z plot", arg) for arg in spec[9:16]]
    margin = _control(prefix, "X/Y/Z plot", spec[16])
    csv_mode = _control(prefix, "X/Y/Z plot", spec[17])
    for row in rows:
        _wire_axis(row, csv_mode, ScriptContext(runtime, mode, styles))  # type: ignore[arg-type]
    axis_args = [component for row in rows for component in (row.kind, row.text, row.picked)]
    return [*axis_args, *checks, margin, csv_mode]


def scripts_panel(prefix: str, mode: str, runtime: Runtime, styles: StyleStore) -> ScriptsPanel:
    """The dropdown and one hidden group per script; the chosen script's group shows."""
    titles = [script.title for script in SCRIPTS]
    choice = gr.Dropdown(translated_choices([NONE, *titles]), value=NONE, label=t("Script"), elem_id=f"{prefix}_script")
    groups, args = [], {}
    for script in SCRIPTS:
        with gr.Group(visible=False) as group:
            if script.title == "X/Y/Z plot":
                args[script.title] = _xyz_controls(prefix, mode, runtime, styles)
            else:
                args[script.title] = [_control(prefix, script.title, arg) for arg in script.spec(mode)]
        groups.append(group)
    to_txt2img = gr.Button(t("Send to txt2img"), visible=False, size="sm", elem_id=f"{prefix}_script_send_to_txt2img")

    def on_choice(title: str):
        return [gr.update(visible=title == script.title) for script in SCRIPTS] + [gr.update(visible=title != NONE)]

    choice.change(on_choice, [choice], [*groups, to_txt2img], show_progress="hidden", concurrency_limit=None)
    return ScriptsPanel(choice, args, to_txt2img)
