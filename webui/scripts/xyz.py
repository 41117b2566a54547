"""The X/Y/Z plot: every value combination rendered by the normal generate call, then one labelled grid."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from PIL import Image

from webui.errors import UserInputError
from webui.processing.jobs import JobState
from webui.processing.noise import fix_seed
from webui.processing.request import GenerationRequest
from webui.processing.results import GenerationResult, ImageResult
from webui.scripts.axes import Axis, find_axis, fix_axis_seeds, typed_values
from webui.scripts.common import (
    ScriptContext,
    append_params,
    merged_warnings,
    request_fields,
    run_cells,
    save_script_grid,
    with_fields,
)
from webui.scripts.grid import labelled_grid, row_of_grids
from webui.scripts.values import join_values, parse_values

TITLE = "X/Y/Z plot"
GRID_BASENAME = "xyz_grid"


@dataclass(frozen=True)
class XyzArgs:
    """A1111 v1.10.1's script_args, in its positional order."""

    x_type: Any = 1
    x_values: str = ""
    x_values_dropdown: Any = None
    y_type: Any = 0
    y_values: str = ""
    y_values_dropdown: Any = None
    z_type: Any = 0
    z_values: str = ""
    z_values_dropdown: Any = None
    draw_legend: bool = True
    include_lone_images: bool = False
    include_sub_grids: bool = False
    no_fixed_seeds: bool = False
    vary_seeds_x: bool = False
    vary_seeds_y: bool = False
    vary_seeds_z: bool = False
    margin_size: int = 0
    csv_mode: bool = False


@dataclass
class AxisValues:
    """One axis as the user filled it: its type, the values to plot and the text the infotext records."""

    axis: Axis
    values: list
    text: str

    @property
    def labels(self) -> list[str]:
        return [self.axis.format(value) for value in self.values]


@dataclass
class PlotPlan:
    x: AxisValues
    y: AxisValues
    z: AxisValues
    requests: list[Any]  # one per cell, index = ix + iy * nx + iz * nx * ny
    order: list[int]  # the cells in the order they render (costly axes outermost)


def read_axis(ctx: ScriptContext, name: str, kind: Any, text: str, dropdown: Any, args: XyzArgs) -> AxisValues:
    """Parse and check one axis' values; every problem is a UserInputError naming the axis and the value."""
    axis = find_axis(ctx.mode, kind)
    if axis.apply is None:
        raise UserInputError(f"{name} type {axis.label!r} is not supported by this WebUI")
    if axis.label == "Nothing":
        return AxisValues(axis, [None], "")
    picked = [str(value) for value in dropdown] if isinstance(dropdown, (list, tuple)) else []
    if axis.choices is not None and picked and not args.csv_mode:
        text = join_values(picked)
    value_kind = axis.kind if axis.kind in (int, float) else str
    values = parse_values(text or "", value_kind, f"{name} values")  # type: ignore[arg-type]
    if not values:
        raise UserInputError(f"{name} values: give at least one value for {axis.label}")
    if axis.confirm is not None:
        try:
            values = axis.confirm(values, ctx)
        except ValueError as error:  # UserInputError, and UnknownSamplerError naming the sampler
            raise UserInputError(f"{name} values: {error}") from None
    if axis.seed_axis and not args.no_fixed_seeds:
        values = fix_axis_seeds(values)
    return AxisValues(axis, typed_values(axis, values), text or "")


def loop_order(x: AxisValues, y: AxisValues, z: AxisValues) -> list[int]:
    """Cell indices with the costliest axis outermost (A1111's rule; ties: Z, then Y, then X outermost)."""
    sizes = {"x": len(x.values), "y": len(y.values), "z": len(z.values)}
    costs = {"x": x.axis.cost, "y": y.axis.cost, "z": z.axis.cost}
    nesting = sorted(["z", "y", "x"], key=lambda name: -costs[name])  # stable: ties keep z, y, x
    order: list[int] = []

    def visit(depth: int, position: dict[str, int]) -> None:
        if depth == 3:
            order.append(position["x"] + position["y"] * sizes["x"] + position["z"] * sizes["x"] * sizes["y"])
            return
        name = nesting[depth]
        for index in range(sizes[name]):
            visit(depth + 1, {**position, name: index})

    visit(0, {})
    return order


def plan_plot(request: GenerationRequest, raw: XyzArgs, ctx: ScriptContext) -> PlotPlan:
    """Everything checked and every cell's request built before the first picture renders."""
    x = read_axis(ctx, "X", raw.x_type, raw.x_values, raw.x_values_dropdown, raw)
    y = read_axis(ctx, "Y", raw.y_type, raw.y_values, raw.y_values_dropdown, raw)
    z = read_axis(ctx, "Z", raw.z_type, raw.z_values, raw.z_values_dropdown, raw)
    base = request_fields(request)
    if not raw.no_fixed_seeds:  # the same random seed in every cell unless "Keep -1 for seeds"
        base["seed"], base["subseed"] = fix_seed(base["seed"]), fix_seed(base["subseed"])
    nx, ny = len(x.values), len(y.values)
    requests = []
    for iz, z_value in enumerate(z.values):
        for iy, y_value in enumerate(y.values):
            for ix, x_value in enumerate(x.values):
                fields = dict(base)
                for axis, value in ((x, x_value), (y, y_value), (z, z_value)):
                    assert axis.axis.apply is not None
                    axis.axis.apply(fields, value, axis.values, ctx)
                x_dim = nx if raw.vary_seeds_x else 1
                y_dim = ny if raw.vary_seeds_y else 1
                fields["seed"] = (fields["seed"] + (ix if raw.vary_seeds_x else 0)
                                  + (iy * x_dim if raw.vary_seeds_y else 0)
                                  + (iz * x_dim * y_dim if raw.vary_seeds_z else 0))
                fields["save_grid"] = False  # a cell's own batch grid is not wanted
                requests.append(with_fields(request, fields))
    return PlotPlan(x, y, z, requests, loop_order(x, y, z))


def grid_params(plan: PlotPlan) -> dict[str, Any]:
    params: dict[str, Any] = {"Script": TITLE}
    for name, axis in (("X", plan.x), ("Y", plan.y), ("Z", plan.z)):
        if axis.axis.label == "Nothing":
            continue
        params[f"{name} Type"] = axis.axis.label
        params[f"{name} Values"] = axis.text
        if axis.axis.seed_axis:
            params[f"Fixed {name} Values"] = ", ".join(str(value) for value in axis.values)
    return params


def run_xyz(request: GenerationRequest, args: XyzArgs, ctx: ScriptContext, job: JobState) -> GenerationResult:
    plan = plan_plot(request, args, ctx)
    total = len(plan.requests)
    results, interrupted = run_cells(plan.requests, plan.order, ctx, job)
    result = GenerationResult(interrupted=interrupted, warnings=merged_warnings(results.values()))
    records: list[ImageResult | None] = [None] * total
    for index, cell in results.items():
        if cell.items:
            records[index] = cell.items[0]
    cells = [record.image if record else None for record in records]
    texts = [record.infotext if record else None for record in records]
    done = [i for i in range(total) if cells[i] is not None]
    if not done:
        return result
    size = cells[done[0]].size  # type: ignore[union-attr]
    filled = [image if image is not None else Image.new("RGB", size) for image in cells]
    nx, ny = len(plan.x.values), len(plan.y.values)
    sub_grids = [labelled_grid(filled[iz * nx * ny:(iz + 1) * nx * ny], nx, plan.x.labels, plan.y.labels,
                               args.draw_legend, int(args.margin_size)) for iz in range(len(plan.z.values))]
    result.grid = row_of_grids(sub_grids, plan.z.labels, args.draw_legend, int(args.margin_size))
    first_text = texts[done[0]] or ""
    result.grid_infotext = append_params(first_text, grid_params(plan))
    saved = save_script_grid(result.grid, result.grid_infotext, request, ctx.runtime, GRID_BASENAME)
    first = records[done[0]]
    assert first is not None
    if args.include_sub_grids and len(sub_grids) > 1:
        for iz, sub_grid in enumerate(sub_grids):
            # A sub-grid carries the record of its first cell (seed, prompt, infotext), not a file of its own.
            source = records[iz * nx * ny] or first
            result.add(replace(source, image=sub_grid, infotext=texts[iz * nx * ny] or first_text, path=None))
    if args.include_lone_images:
        for index in done:
            record = records[index]
            assert record is not None
            result.add(record)
    result.grid_path = saved
    return result
