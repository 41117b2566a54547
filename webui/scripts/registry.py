"""The script API the UI and the REST API share: scripts by A1111 title, their argument specs, one run call."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from webui.errors import UserInputError
from webui.processing.jobs import JobState
from webui.processing.request import GenerationRequest
from webui.processing.results import GenerationResult
from webui.scripts.axes import axes_for
from webui.scripts.common import ScriptContext, mode_of
from webui.scripts.matrix import TITLE as MATRIX_TITLE
from webui.scripts.matrix import MatrixArgs, run_matrix
from webui.scripts.prompts_file import TITLE as PROMPTS_TITLE
from webui.scripts.prompts_file import PromptsFileArgs, run_prompts_file
from webui.scripts.xyz import TITLE as XYZ_TITLE
from webui.scripts.xyz import XyzArgs, run_xyz

MODES = ("txt2img", "img2img")


@dataclass(frozen=True)
class ScriptArg:
    """One positional argument as /sdapi/v1/script-info describes it (and the UI builds its control from)."""

    name: str
    label: str
    value: Any
    choices: list[str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {"label": self.label, "value": self.value, "minimum": self.minimum, "maximum": self.maximum,
                "step": self.step, "choices": self.choices}


@dataclass(frozen=True)
class Script:
    title: str
    args_type: type
    run: Callable[[GenerationRequest, Any, ScriptContext, JobState], GenerationResult]
    spec: Callable[[str], list[ScriptArg]]


def _xyz_spec(mode: str) -> list[ScriptArg]:
    labels = [axis.label for axis in axes_for(mode)]
    args = []
    for axis, default in (("x", 1), ("y", 0), ("z", 0)):
        name = axis.upper()
        args += [ScriptArg(f"{axis}_type", f"{name} type", default, labels),
                 ScriptArg(f"{axis}_values", f"{name} values", ""),
                 ScriptArg(f"{axis}_values_dropdown", f"{name} values", [], [])]
    args += [ScriptArg("draw_legend", "Draw legend", True),
             ScriptArg("include_lone_images", "Include Sub Images", False),
             ScriptArg("include_sub_grids", "Include Sub Grids", False),
             ScriptArg("no_fixed_seeds", "Keep -1 for seeds", False),
             ScriptArg("vary_seeds_x", "Vary seeds for X", False), ScriptArg("vary_seeds_y", "Vary seeds for Y", False),
             ScriptArg("vary_seeds_z", "Vary seeds for Z", False),
             ScriptArg("margin_size", "Grid margins (px)", 0, minimum=0, maximum=500, step=2),
             ScriptArg("csv_mode", "Use text inputs instead of dropdowns", False)]
    return args


def _matrix_spec(mode: str) -> list[ScriptArg]:
    return [ScriptArg("put_at_start", "Put variable parts at start of prompt", False),
            ScriptArg("different_seeds", "Use different seed for each picture", False),
            ScriptArg("prompt_type", "Select prompt", "positive", ["positive", "negative"]),
            ScriptArg("variations_delimiter", "Select joining char", "comma", ["comma", "space"]),
            ScriptArg("margin_size", "Grid margins (px)", 0, minimum=0, maximum=500, step=2)]


def _prompts_spec(mode: str) -> list[ScriptArg]:
    return [ScriptArg("checkbox_iterate", "Iterate seed every line", False),
            ScriptArg("checkbox_iterate_batch", "Use same random seed for all lines", False),
            ScriptArg("prompt_position", "Insert prompts at the", "start", ["start", "end"]),
            ScriptArg("prompt_txt", "List of prompt inputs", "")]


SCRIPTS: tuple[Script, ...] = (
    Script(PROMPTS_TITLE, PromptsFileArgs, run_prompts_file, _prompts_spec),
    Script(XYZ_TITLE, XyzArgs, run_xyz, _xyz_spec),
    Script(MATRIX_TITLE, MatrixArgs, run_matrix, _matrix_spec),
)


def script_titles() -> list[str]:
    return [script.title for script in SCRIPTS]


def find_script(name: str) -> Script:
    """A script by its title, case-insensitive, as A1111's API matches `script_name`."""
    for script in SCRIPTS:
        if script.title.casefold() == str(name).strip().casefold():
            return script
    raise UserInputError(f"Unknown script {name!r}; available: {', '.join(s.title.lower() for s in SCRIPTS)}")


def script_info() -> list[dict[str, Any]]:
    """/sdapi/v1/script-info: each script once per tab, with its arguments' labels, defaults and choices."""
    return [{"name": script.title.lower(), "is_alwayson": False, "is_img2img": mode == "img2img",
             "args": [arg.as_json() for arg in script.spec(mode)]} for mode in MODES for script in SCRIPTS]


def bind_args(script: Script, values: list[Any] | tuple[Any, ...]) -> Any:
    """Positional script_args → the script's typed arguments; missing ones take their defaults, as A1111."""
    names = [f.name for f in dataclasses.fields(script.args_type)]
    if len(values) > len(names):
        raise UserInputError(f"{script.title}: {len(values)} script_args given, it takes at most {len(names)}")
    return script.args_type(**dict(zip(names, values, strict=False)))


def run_script(name: str, args: list[Any] | tuple[Any, ...], request: GenerationRequest, ctx: ScriptContext,
               job: JobState) -> GenerationResult:
    """Run a script on a tab's request: the same processing calls as a plain Generate, many times over."""
    script = find_script(name)
    if ctx.mode != mode_of(request):
        raise UserInputError(f"{script.title}: a {mode_of(request)} request was given to the {ctx.mode} tab")
    return script.run(request, bind_args(script, list(args)), ctx, job)
