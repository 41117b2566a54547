"""The extra-networks tabs beside "Generation": Lora, Textual Inversion and Checkpoints card grids."""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable

import gradio as gr

from webui.errors import UserInputError
from webui.processing.runtime import Runtime
from webui.ui.extra_networks import (
    ALL_FOLDERS,
    Card,
    ThumbnailCache,
    checkpoint_cards,
    embedding_cards,
    filter_cards,
    folder_choices,
    lora_cards,
    render_cards,
    set_card_preview,
)
from webui.ui.i18n import t, translated_choices
from webui.ui.lora_metadata import lora_metadata_dialog
from webui.ui.messages import catalogued, show_info, ui_error, ui_message, ui_text
from webui.ui.panels import selected_image

EMPTY_TEXT = MappingProxyType({
    "lora": catalogued("No LoRA files yet: copy .safetensors files into the Lora folder, then press Refresh."),
    "embedding": catalogued("No embeddings yet: copy them into the embeddings folder, then press Refresh."),
    "checkpoint": catalogued("No checkpoints found."),
})


@dataclass
class NetworkTab:
    kind: str
    search: gr.Textbox
    folder: gr.Dropdown
    cards: gr.HTML


def _cards_for(kind: str, runtime: Runtime) -> list[Card]:
    if kind == "lora":
        return lora_cards(runtime, runtime.settings.current.extra_networks_default_multiplier)
    if kind == "embedding":
        return embedding_cards(runtime)
    return checkpoint_cards(runtime)


def network_tabs(prefix: str, runtime: Runtime, thumbnails: ThumbnailCache) -> list[NetworkTab]:
    """Build the three card tabs (call inside a gr.Tabs); each renders at page load and on its own controls."""
    tabs = []
    for kind, label in (("lora", "Lora"), ("embedding", "Textual Inversion"), ("checkpoint", "Checkpoints")):
        with gr.Tab(t(label), elem_id=f"{prefix}_{kind}_tab"):
            with gr.Row():
                search = gr.Textbox(label=t("Search"), elem_id=f"{prefix}_{kind}_search", scale=4,
                                    placeholder=t("Search…"))
                folder = gr.Dropdown(translated_choices([ALL_FOLDERS]), value=ALL_FOLDERS, label=t("Subfolder"),
                                     elem_id=f"{prefix}_{kind}_folder", scale=2)
                refresh = gr.Button(t("Refresh"), elem_id=f"{prefix}_{kind}_refresh", scale=1, min_width=90)
            cards = gr.HTML(elem_id=f"{prefix}_{kind}_cards")
        tab = NetworkTab(kind, search, folder, cards)
        render = _renderer(tab, prefix, runtime, thumbnails, rescan=False)
        quiet: dict[str, Any] = dict(show_progress="hidden", concurrency_limit=None)
        search.change(render, [search, folder], [cards, folder], trigger_mode="always_last", **quiet)
        folder.change(render, [search, folder], [cards, folder], **quiet)
        refresh.click(_renderer(tab, prefix, runtime, thumbnails, rescan=True), [search, folder], [cards, folder],
                      **quiet)
        tabs.append(tab)
    return tabs


def _renderer(tab: NetworkTab, prefix: str, runtime: Runtime, thumbnails: ThumbnailCache,
              rescan: bool) -> Callable:
    def render(search: str, folder: str):
        if rescan:  # new files in the folders show up without a restart
            if tab.kind == "lora":
                runtime.loras.scan()
            elif tab.kind == "checkpoint":
                runtime.registry.refresh()
        cards = _cards_for(tab.kind, runtime)
        folders = folder_choices(cards)
        folder = folder if folder in folders else ALL_FOLDERS
        html = render_cards(filter_cards(cards, search or "", folder), prefix, thumbnails,
                            ui_message(EMPTY_TEXT[tab.kind]))
        return html, gr.update(choices=translated_choices(folders, (ALL_FOLDERS,)), value=folder)
    return render


def load_events(demo: gr.Blocks, tabs: list[NetworkTab], prefix: str, runtime: Runtime,
                thumbnails: ThumbnailCache) -> None:
    for tab in tabs:
        demo.load(_renderer(tab, prefix, runtime, thumbnails, rescan=False), [tab.search, tab.folder],
                  [tab.cards, tab.folder], show_progress="hidden", concurrency_limit=None)


def card_actions(prefix: str, runtime: Runtime, thumbnails: ThumbnailCache, tabs: list[NetworkTab],
                 gallery: gr.Gallery, selected: gr.State, checkpoint: gr.Dropdown) -> None:
    """Hidden textbox + button the card script drives: set a card's preview, or pick a checkpoint card."""
    action = gr.Textbox(elem_id=f"{prefix}_card_action", elem_classes="sdw-hidden", show_label=False)
    run = gr.Button(elem_id=f"{prefix}_card_action_button", elem_classes="sdw-hidden")
    by_kind = {tab.kind: tab for tab in tabs}

    def on_action(text: str, images, index: int, current_checkpoint: str, *filters):
        kind, _, rest = (text or "").partition("\u0000")
        name = rest.partition("\u0000")[0]
        renders = [gr.skip()] * (2 * len(tabs))
        if kind == "checkpoint":
            return [name, *renders]
        if kind not in by_kind:
            return [gr.skip(), *renders]
        try:
            path = set_card_preview(runtime, kind, name, selected_image(images, index))
        except UserInputError as error:
            raise ui_error(error) from None
        show_info(ui_text("Preview saved: {file}", file=path.name))
        position = [tab.kind for tab in tabs].index(kind)
        html, folder = _renderer(by_kind[kind], prefix, runtime, thumbnails, rescan=False)(
            filters[2 * position], filters[2 * position + 1])
        renders[2 * position:2 * position + 2] = [html, folder]
        return [gr.skip(), *renders]

    filter_inputs = [component for tab in tabs for component in (tab.search, tab.folder)]
    outputs = [checkpoint] + [component for tab in tabs for component in (tab.cards, tab.folder)]
    run.click(on_action, [action, gallery, selected, checkpoint, *filter_inputs], outputs, concurrency_limit=None)
    if "lora" in by_kind:
        lora_tab = by_kind["lora"]
        render = _renderer(lora_tab, prefix, runtime, thumbnails, rescan=False)
        lora_metadata_dialog(prefix, runtime, lambda: list(render("", ALL_FOLDERS)),
                             [lora_tab.cards, lora_tab.folder])
