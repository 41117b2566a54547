"""Where a result was saved: its path, with "open folder" for a user at the server's own screen, else downloads."""
from __future__ import annotations

import html
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence
from urllib.parse import quote

import gradio as gr

from webui.paths import resolve_inside
from webui.processing.runtime import Runtime
from webui.ui.messages import shown_error, ui_text

LOCAL_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def is_local(request: gr.Request | None) -> bool:
    """True when the browser runs on the server's machine, where opening a folder there is what the user sees."""
    client = getattr(request, "client", None)
    return getattr(client, "host", None) in LOCAL_HOSTS


def download_url(path: str) -> str:
    """The Gradio route serving a saved file (the output folders are registered as static paths)."""
    return "/gradio_api/file=" + quote(str(Path(path).resolve()))


def saved_html(paths: Sequence[str], prefix: str, local: bool) -> str:
    """The saved files' paths, plus an open-folder button (local) or download links (remote)."""
    if not paths:
        return ""
    rows = []
    for path in paths:
        shown = html.escape(str(path))
        if local:
            folder = html.escape(str(Path(path).parent), quote=True)
            action = (f"<button class='sdw-open-folder' data-prefix='{prefix}' data-folder='{folder}' "
                      f"title='{html.escape(ui_text('Open the folder'), quote=True)}'>📂</button>")
        else:
            action = (f"<a class='sdw-download' href='{html.escape(download_url(path), quote=True)}' download>"
                      f"⬇</a>")
        rows.append(f"<div class='sdw-saved'>{action} <code>{shown}</code></div>")
    return "".join(rows)


def saved_folders(runtime: Runtime) -> list[Path]:
    """Folders results are written under: the outputs folder, and Settings' "Output directory" when set."""
    folders = [runtime.folders.outputs.resolve()]
    custom = runtime.settings.current.outdir_samples
    if custom:
        folders.append(resolve_inside(runtime.folders.data, custom).resolve())
    return folders


def launch_file_manager(folder: Path) -> None:
    """Open `folder` in the desktop's file manager, as A1111's 📂 button does."""
    if sys.platform == "win32":
        os.startfile(str(folder))  # type: ignore[attr-defined]  # Windows only
    else:
        opener = "open" if sys.platform == "darwin" else "xdg-open"
        subprocess.Popen([opener, str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wire_open_folder(prefix: str, runtime: Runtime) -> None:
    """Hidden textbox + button that the 📂 button in the result panel drives; only local users open folders."""
    folder_box = gr.Textbox(elem_id=f"{prefix}_open_folder_path", elem_classes="sdw-hidden", show_label=False)
    run = gr.Button(elem_id=f"{prefix}_open_folder_button", elem_classes="sdw-hidden")

    def on_open(folder: str, request: gr.Request) -> None:
        if not is_local(request):
            raise shown_error(ui_text("Folders open on the server's screen only; use the download link instead"))
        target = Path(folder or "").resolve()
        if not target.is_dir() or not any(target.is_relative_to(root) for root in saved_folders(runtime)):
            raise shown_error(ui_text("Not an output folder: {folder}", folder=folder))
        launch_file_manager(target)

    run.click(on_open, [folder_box], None, show_progress="hidden", concurrency_limit=None)
