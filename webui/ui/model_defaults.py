"""Form defaults that follow the model: width/height start at the checkpoint's native size, and a notice says when
the bundled demo model is the one in use."""
from __future__ import annotations

from typing import Any

import gradio as gr

from webui.processing.runtime import Runtime
from webui.ui.i18n import t

DEMO_NOTICE = ("Demo model: it draws coloured shapes at 64 px (try “a red circle on a white background”). "
               "Drop a checkpoint into models/Stable-diffusion and press ⟳ to use your own.")


def demo_notice(runtime: Runtime, checkpoint: str | None) -> gr.HTML:
    """The notice line under the checkpoint picker, shown only while the demo checkpoint is the one in use."""
    return gr.HTML(t(DEMO_NOTICE), visible=runtime.models.is_bundled_demo(checkpoint or None), elem_id="demo_notice",
                   elem_classes="sdw-demo-notice")


def wire_model_defaults(demo: gr.Blocks, runtime: Runtime, checkpoint: gr.Dropdown, notice: gr.HTML,
                        tabs: list) -> None:
    """Page load: the Settings defaults (size: the model's native one unless set). Checkpoint change: sizes the
    user has not changed since move to the new model's native size, and the demo notice follows the choice."""
    params = [tab.params for tab in tabs]
    outputs = [component for p in params for component in (p.sampler, p.scheduler, p.steps, p.width, p.height,
                                                            p.cfg_scale)]
    sizes = [component for p in params for component in (p.width, p.height)]
    last_default = gr.State(None)

    def notice_update(chosen: str | None) -> dict[str, Any]:
        # An update dict, not gr.HTML(...): a component built in a handler thread joins whatever Blocks another
        # thread is building at that moment (gradio's global Context.root_block), half-initialised.
        return gr.update(visible=runtime.models.is_bundled_demo(chosen or None))

    def defaults(chosen: str | None):
        s = runtime.settings.current
        width, height = runtime.default_size(chosen or None)
        values = [s.default_sampler_name, s.default_scheduler, s.default_steps, width, height,
                  s.default_cfg_scale] * len(tabs)
        return [*values, [width, height], notice_update(chosen)]

    # The page marks itself once the defaults are in, so a script (or a browser test) can wait for that state.
    demo.load(defaults, [checkpoint], [*outputs, last_default, notice], show_progress="hidden",
              concurrency_limit=None).then(
        None, None, None, js="() => { document.body.dataset.defaultsLoaded = '1'; }", show_progress="hidden")

    def on_checkpoint(chosen: str | None, previous: list[int] | None, *current: Any):
        width, height = runtime.default_size(chosen or None)
        updates: list[Any] = []
        for index in range(0, len(current), 2):
            untouched = previous is not None and [int(current[index]), int(current[index + 1])] == list(previous)
            updates += [width, height] if untouched else [gr.skip(), gr.skip()]
        return [*updates, [width, height], notice_update(chosen)]

    checkpoint.change(on_checkpoint, [checkpoint, last_default, *sizes], [*sizes, last_default, notice],
                      show_progress="hidden", concurrency_limit=None)
