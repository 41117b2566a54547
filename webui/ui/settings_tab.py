"""The Settings tab: edit the persisted Settings (config.json) grouped as A1111 groups them."""
from __future__ import annotations

import html

import gradio as gr

from webui.errors import UserInputError
from webui.processing.outputs import default_filename_pattern
from webui.processing.request import EMPHASIS_MODES
from webui.processing.settings import SettingsStore
from webui.sampling.names import SAMPLER_NAMES, SCHEDULE_NAMES
from webui.ui.i18n import LOCALES, remember_locale_js, t, translated_choices
from webui.ui.messages import ui_error, ui_text
from webui.ui.panels import AUTOMATIC


def build_settings(store: SettingsStore) -> dict[str, gr.components.Component]:
    """One control per editable option, keyed by the option's config.json name; wired to "Apply settings"."""
    current = store.current
    fields: dict[str, gr.components.Component] = {}
    apply = gr.Button(t("Apply settings"), variant="primary", elem_id="settings_submit")
    # When config.json was unreadable at start-up and its .bak (or the defaults) were loaded, say so here too.
    note = getattr(store, "load_note", "")
    result = gr.HTML(f"<p class='settings-warning'>⚠ {html.escape(note)}</p>" if note else "",
                     elem_id="settings_result")
    with gr.Tabs(elem_id="settings_sections"):
        with gr.Tab(t("Saving images")):
            # The placeholder is the pattern an empty box means, so it matches the names actually written.
            fields["samples_filename_pattern"] = gr.Textbox(
                current.samples_filename_pattern, label=t("Images filename pattern"),
                placeholder=default_filename_pattern(current.save_to_dirs), elem_id="setting_samples_filename_pattern")
            fields["outdir_samples"] = gr.Textbox(current.outdir_samples, label=t("Output directory for images"))
            save_to_dirs = gr.Checkbox(current.save_to_dirs, label=t("Save images to a subdirectory"))
            fields["save_to_dirs"] = save_to_dirs
            save_to_dirs.change(
                lambda on: gr.update(placeholder=default_filename_pattern(on)), [save_to_dirs],
                [fields["samples_filename_pattern"]], show_progress="hidden", concurrency_limit=None)
            fields["samples_format"] = gr.Dropdown(["png", "jpg", "webp"], value=current.samples_format,
                                                   label=t("File format for images"))
        with gr.Tab(t("Defaults")):
            fields["default_sampler_name"] = gr.Dropdown([s.name for s in SAMPLER_NAMES],
                                                         value=current.default_sampler_name,
                                                         label=t("Default sampling method"))
            fields["default_scheduler"] = gr.Dropdown(translated_choices([s.label for s in SCHEDULE_NAMES],
                                                                         AUTOMATIC),
                                                      value=current.default_scheduler,
                                                      label=t("Default schedule type"))
            fields["default_steps"] = gr.Slider(1, 150, value=current.default_steps, step=1,
                                                label=t("Default sampling steps"))
            with gr.Row():
                fields["default_width"] = gr.Slider(0, 2048, value=current.default_width, step=8,
                                                    label=t("Default width"),
                                                    info=t("0: the loaded model's native size"))
                fields["default_height"] = gr.Slider(0, 2048, value=current.default_height, step=8,
                                                     label=t("Default height"),
                                                     info=t("0: the loaded model's native size"))
            fields["default_cfg_scale"] = gr.Slider(1, 30, value=current.default_cfg_scale, step=0.5,
                                                    label=t("Default CFG Scale"))
            fields["extra_networks_default_multiplier"] = gr.Slider(
                0, 2, value=current.extra_networks_default_multiplier, step=0.05, label=t("Default LoRA weight"))
        with gr.Tab(t("Prompts")):
            fields["emphasis"] = gr.Radio(translated_choices(EMPHASIS_MODES), value=current.emphasis,
                                          label=t("Emphasis mode"))
            fields["comma_padding_backtrack"] = gr.Slider(0, 74, value=current.comma_padding_backtrack, step=1,
                                                          label=t("Comma back-off (tokens)"))
            fields["keyedit_precision_attention"] = gr.Slider(
                0.01, 0.2, value=current.keyedit_precision_attention, step=0.01,
                label=t("Ctrl+Up/Down precision when editing (attention:1.1)"))
            fields["keyedit_precision_extra"] = gr.Slider(
                0.01, 0.2, value=current.keyedit_precision_extra, step=0.01,
                label=t("Ctrl+Up/Down precision when editing <extra networks:0.9>"))
        with gr.Tab(t("Live previews")):
            fields["live_previews_enable"] = gr.Checkbox(current.live_previews_enable, label=t("Show live previews"))
            fields["show_progress_every_n_steps"] = gr.Slider(
                0, 100, value=current.show_progress_every_n_steps, step=1,
                label=t("Live preview every N sampling steps (0 = off)"))
        with gr.Tab(t("User interface")):
            fields["localization"] = gr.Dropdown(list(LOCALES), label=t("Language"),
                                                 value=current.localization if current.localization in LOCALES
                                                 else "Auto",
                                                 elem_id="settings_localization",
                                                 info=t("Auto follows the browser language"))
    names = list(fields)

    def on_apply(*values):
        changes = {name: value for name, value in zip(names, values, strict=True)}
        for name in ("default_steps", "default_width", "default_height", "comma_padding_backtrack",
                     "show_progress_every_n_steps"):
            changes[name] = int(changes[name])
        try:
            store.update(changes)
        except UserInputError as error:
            raise ui_error(error) from None
        return f"<div class='sdw-progress'>{ui_text('Settings saved. New defaults apply to newly opened pages.')}</div>"

    apply.click(on_apply, [fields[name] for name in names], [result], concurrency_limit=None).then(
        None, [fields["localization"]], None, js=remember_locale_js())
    return fields
