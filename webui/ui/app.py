"""The Gradio WebUI: top bar, the tabs, "send to" wiring, and the options launch() needs (theme, CSS, i18n)."""
from __future__ import annotations

import importlib.util
from typing import Any

import gradio as gr
from PIL import Image

from webui.errors import UserInputError
from webui.processing.runtime import Runtime
from webui.ui.client import CLIENT_JS, CSS, DARK_THEME_JS
from webui.ui.extra_networks import ThumbnailCache
from webui.ui.generation import SessionJobs
from webui.ui.i18n import locale_head_script, make_i18n, t, translated_choices
from webui.ui.keyedit import KEYEDIT_JS, keyedit_html
from webui.ui.merger_tab import build_merger
from webui.ui.messages import shown_error, ui_error, ui_text
from webui.ui.model_defaults import demo_notice, wire_model_defaults
from webui.ui.networks_panel import load_events
from webui.ui.panels import selected_image
from webui.ui.paste import img2img_targets, pasted_updates, txt2img_targets
from webui.ui.pnginfo_tab import build_pnginfo
from webui.ui.result_files import saved_folders, wire_open_folder
from webui.ui.settings_tab import build_settings
from webui.ui.train_tab import build_train
from webui.ui.txt2img_tab import TopBar, build_txt2img


def checkpoint_choices(runtime: Runtime) -> list[str]:
    return [info.name for info in runtime.registry.checkpoints()]


def vae_choices(runtime: Runtime) -> list:
    names = ["Automatic", "None", *(v.name for v in runtime.registry.vaes())]
    return translated_choices(names, ("Automatic", "None"))


def has_module(name: str) -> bool:
    """Tabs whose processing module is not in this tree are left out instead of showing dead controls."""
    return importlib.util.find_spec(name) is not None


def pasted_values(infotext: str, targets: dict, mode: str) -> list[Any]:
    """Values for `targets` from an infotext (keys it lacks keep the form's value); bad text is a UI error."""
    try:
        return pasted_updates(infotext, targets, mode)
    except UserInputError as error:
        raise ui_error(error) from None


def build_ui(runtime: Runtime) -> gr.Blocks:
    settings = runtime.settings.current
    style_store, previewer = runtime.styles, runtime.previewer
    jobs, thumbnails = SessionJobs(), ThumbnailCache()
    with gr.Blocks(title="Stable Diffusion WebUI") as demo:
        with gr.Row(elem_id="quicksettings"):
            choices = checkpoint_choices(runtime)
            default = runtime.registry.default_checkpoint()
            wanted = settings.sd_model_checkpoint if settings.sd_model_checkpoint in choices else None
            checkpoint = gr.Dropdown(choices, value=wanted or (default.name if default else None),
                                     label=t("Stable Diffusion checkpoint"), elem_id="setting_sd_model_checkpoint",
                                     scale=4)
            refresh = gr.Button("⟳", elem_classes="sdw-tool", elem_id="refresh_sd_model_checkpoint", scale=0,
                                min_width=40)
            vaes = vae_choices(runtime)
            vae = gr.Dropdown(vaes, value=settings.sd_vae if settings.sd_vae in dict(vaes).values() else "Automatic",
                              label=t("SD VAE"), elem_id="setting_sd_vae", scale=2)
            clip_skip = gr.Slider(1, 12, value=settings.CLIP_stop_at_last_layers, step=1, label=t("Clip skip"),
                                  elem_id="setting_CLIP_stop_at_last_layers", scale=2)
        top = TopBar(checkpoint, vae, clip_skip)
        notice = demo_notice(runtime, checkpoint.value)
        keyedit = gr.HTML(keyedit_html(settings), elem_classes="sdw-hidden")
        demo.load(lambda: keyedit_html(runtime.settings.current), None, [keyedit], show_progress="hidden",
                  concurrency_limit=None)
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab(t("txt2img"), id="txt2img", elem_id="tab_txt2img"):
                txt = build_txt2img(runtime, top, style_store, jobs, previewer, thumbnails)
            img = None
            if has_module("webui.processing.img2img"):
                from webui.ui.img2img_tab import build_img2img

                with gr.Tab(t("img2img"), id="img2img", elem_id="tab_img2img"):
                    img = build_img2img(runtime, top, style_store, jobs, previewer, thumbnails)
            extras_image = None
            if has_module("webui.processing.extras"):
                from webui.ui.extras_tab import build_extras

                with gr.Tab(t("Extras"), id="extras", elem_id="tab_extras"):
                    extras_image = build_extras(runtime)
            with gr.Tab(t("Train"), id="train", elem_id="tab_train"):
                train = build_train(runtime)
            with gr.Tab(t("PNG Info"), id="pnginfo", elem_id="tab_pnginfo"):
                png_image, png_infotext, png_to_txt2img, png_to_img2img = build_pnginfo()
            with gr.Tab(t("Checkpoint Merger"), id="modelmerger", elem_id="tab_modelmerger"):
                build_merger(runtime, top.checkpoint)
            with gr.Tab(t("Settings"), id="settings", elem_id="tab_settings"):
                build_settings(runtime.settings)

        _wire_top_bar(runtime, top, refresh)
        wire_model_defaults(demo, runtime, top.checkpoint, notice, [txt] + ([img] if img else []))
        load_events(demo, txt.network_tabs, "txt2img", runtime, thumbnails)
        if img is not None:
            load_events(demo, img.network_tabs, "img2img", runtime, thumbnails)
        _wire_send_to(top, tabs, txt, img, extras_image, png_image, png_infotext, png_to_txt2img, png_to_img2img)
        for prefix in ("txt2img", "img2img"):
            wire_open_folder(prefix, runtime)
        if txt.scripts is not None:  # Train → Run's "Compare epochs (X/Y/Z)"
            from webui.ui.epoch_compare import wire_epoch_compare

            wire_epoch_compare(runtime, train.compare, train.output_name, train.trigger_word, train.last_run, txt,
                               tabs)
    # Saved results are downloadable (a remote browser's "where did it go?"); only the output folders are served.
    gr.set_static_paths([runtime.folders.outputs, *saved_folders(runtime)])
    return demo


def _wire_top_bar(runtime: Runtime, top: TopBar, refresh: gr.Button) -> None:
    def on_refresh(current):
        runtime.registry.refresh()
        names = checkpoint_choices(runtime)
        return (gr.update(choices=names, value=current if current in names else (names[0] if names else None)),
                gr.update(choices=vae_choices(runtime)))

    refresh.click(on_refresh, [top.checkpoint], [top.checkpoint, top.vae], api_name="refresh_checkpoints",
                  concurrency_limit=None)

    def remember(name: str):
        def save(value):
            if value is not None:
                runtime.settings.update({name: int(value) if name == "CLIP_stop_at_last_layers" else value})
        return save

    # A1111 keeps the quick settings in config.json; the model itself is (re)loaded by the next generation.
    for component, option in ((top.checkpoint, "sd_model_checkpoint"), (top.vae, "sd_vae"),
                              (top.clip_skip, "CLIP_stop_at_last_layers")):
        component.input(remember(option), [component], None, show_progress="hidden", concurrency_limit=None)


def _wire_send_to(top: TopBar, tabs: gr.Tabs, txt, img, extras_image, png_image, png_infotext, png_to_txt2img,
                  png_to_img2img) -> None:
    txt_targets = txt2img_targets(txt, top)

    def to_txt2img(infotext):
        if not infotext.strip():
            raise shown_error(ui_text("This image carries no generation parameters"))
        return [*pasted_values(infotext, txt_targets, "txt2img"), gr.update(selected="txt2img")]

    png_to_txt2img.click(to_txt2img, [png_infotext], [*txt_targets.values(), tabs], concurrency_limit=None)
    for tab in [txt] + ([img] if img is not None else []):  # a chosen X/Y/Z cell's settings back to txt2img
        if getattr(tab, "scripts", None) is not None:
            tab.scripts.to_txt2img.click(to_txt2img, [tab.output.infotext], [*txt_targets.values(), tabs],
                                         concurrency_limit=None)
    if img is not None:
        img_targets = img2img_targets(img, top)
        mode = img.extra["mode"]

        def send(kind: str):
            def handler(images, index, infotext):
                picture = selected_image(images, index)
                values = pasted_values(infotext, img_targets, "img2img")
                init = picture if kind == "img2img" else gr.skip()
                editor = {"background": picture, "layers": [], "composite": picture} if kind == "inpaint" \
                    else gr.skip()
                sub_tab = "img2img" if kind == "img2img" else "inpaint"
                return [init, editor, "img2img" if kind == "img2img" else "Inpaint", *values,
                        gr.update(selected="img2img"), gr.update(selected=sub_tab)]
            return handler

        outputs = [img.init_image, img.inpaint, mode, *img_targets.values(), tabs, img.mode_tabs]
        for button, kind in ((txt.output.to_img2img, "img2img"), (txt.output.to_inpaint, "inpaint")):
            button.click(send(kind), [txt.output.gallery, txt.output.selected, txt.output.infotext], outputs,
                         concurrency_limit=None)
        for button, kind in ((img.output.to_img2img, "img2img"), (img.output.to_inpaint, "inpaint")):
            button.click(send(kind), [img.output.gallery, img.output.selected, img.output.infotext], outputs,
                         concurrency_limit=None)

        def png_send(path, infotext):
            if not path:
                raise shown_error(ui_text("Drop an image first"))
            with Image.open(path) as opened:
                picture = opened.convert("RGB")
            values = pasted_values(infotext, img_targets, "img2img")
            return [picture, "img2img", *values, gr.update(selected="img2img"), gr.update(selected="img2img")]

        png_to_img2img.click(png_send, [png_image, png_infotext],
                             [img.init_image, mode, *img_targets.values(), tabs, img.mode_tabs],
                             concurrency_limit=None)
    if extras_image is not None:
        for output in [txt.output] + ([img.output] if img is not None else []):
            output.to_extras.click(lambda images, index: (selected_image(images, index), gr.update(selected="extras")),
                                   [output.gallery, output.selected], [extras_image, tabs], concurrency_limit=None)


def launch_options(theme: str = "dark", *, localization: str = "Auto") -> dict:
    """Keyword arguments for Blocks.launch(): gradio 6 takes theme JS, CSS, head scripts and i18n there."""
    options: dict[str, Any] = {"css": CSS, "head": locale_head_script(localization) + CLIENT_JS + KEYEDIT_JS,
                               "i18n": make_i18n()}
    if theme == "dark":
        options["js"] = DARK_THEME_JS
    return options
