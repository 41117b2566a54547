"""Run-time UI text (toasts, errors, status lines, server-built HTML) in the language the page shows.

English is the source language: the code writes English templates (`"Saved style {name!r}"`), the catalogue in
`locales/<locale>/runtime/*.json` maps each template to its translation, and only this module picks one. Lower layers
stay language-free: a message they raise is matched against the same templates here, at the point it is shown.
"""
from __future__ import annotations

import json
import re
from string import Formatter
from types import MappingProxyType
from typing import Any, Mapping

import gradio as gr
from gradio.context import LocalContext

from webui.ui.i18n import LOCALE_FOLDER, STORAGE_KEY, ZH_CN

ENGLISH = "en"
CHINESE = "zh-CN"
# The language the page shows (Gradio's pick: browser, Settings or footer menu) travels in a cookie of this name.
LOCALE_COOKIE = STORAGE_KEY


def _catalogue(locale: str) -> Mapping[str, str]:
    merged: dict[str, str] = {}
    for path in sorted((LOCALE_FOLDER / locale / "runtime").glob("*.json")):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    return MappingProxyType(merged)


RUNTIME_CATALOGUES: Mapping[str, Mapping[str, str]] = MappingProxyType({CHINESE: _catalogue(CHINESE)})
# A label that the page's own table translates already (a field name shown in the LoRA metadata view) needs no copy.
CATALOGUES: Mapping[str, Mapping[str, str]] = MappingProxyType({CHINESE: MappingProxyType({**ZH_CN,
                                                                                         **RUNTIME_CATALOGUES[CHINESE]})})


def template_fields(template: str) -> list[str]:
    """The placeholder names of a template, in order ("{name!r}" and "{loss:.4f}" give "name" and "loss")."""
    return [field for _, field, _, _ in Formatter().parse(template) if field is not None]


def _pattern(template: str) -> re.Pattern[str]:
    """A regex that matches the template once formatted: fixed text as is, each placeholder any text."""
    parts, seen = [], set()
    for literal, field, _, _ in Formatter().parse(template):
        parts.append(re.escape(literal))
        if field is not None:
            name = f"f_{re.sub(r'[^0-9A-Za-z_]', '_', field)}"
            parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
            seen.add(name)
    return re.compile("".join(parts), re.DOTALL)


def _fixed_length(template: str) -> int:
    return sum(len(literal) for literal, _, _, _ in Formatter().parse(template))


def _patterns(catalogue: Mapping[str, str]) -> tuple[tuple[re.Pattern[str], str, str], ...]:
    # Templates with placeholders only; the most specific (longest fixed text) is tried first.
    with_fields = sorted((key for key in catalogue if template_fields(key)), key=_fixed_length, reverse=True)
    return tuple((_pattern(key), key, catalogue[key]) for key in with_fields)


PATTERNS = MappingProxyType({locale: _patterns(table) for locale, table in RUNTIME_CATALOGUES.items()})


def _fill(template: str, values: Mapping[str, str]) -> str:
    """Put already-formatted text into a template's placeholders (their format specs applied in English)."""
    out = []
    for literal, field, _, _ in Formatter().parse(template):
        out.append(literal)
        if field is not None:
            out.append(values[f"f_{re.sub(r'[^0-9A-Za-z_]', '_', field)}"])
    return "".join(out)


def translate_template(template: str, locale: str, /, **values: Any) -> str:
    """A catalogue template formatted with `values`, in `locale` (English, or a missing entry, as written)."""
    translated = CATALOGUES.get(locale, {}).get(template, template)
    return translated.format(**values) if values or template_fields(template) else translated


def translate_message(message: str, locale: str) -> str:
    """A finished English message (a lower layer's error, a warning, a report) in `locale`, as far as the catalogue
    knows its parts; what it does not know stays English."""
    if locale not in CATALOGUES or not message:
        return message
    translated = _translated(message, locale)
    return message if translated is None else translated


def _translated(message: str, locale: str) -> str | None:
    """An exact entry, else the most specific template (variable parts kept, and translated when they are messages
    themselves), else the message split into lines, `a; b` parts or a `name: message` head; None if nothing fits."""
    table = CATALOGUES[locale]
    if message in table:
        return table[message]
    for pattern, _, translated in PATTERNS[locale]:
        match = pattern.fullmatch(message)
        if match:
            parts = {name: translate_message(text, locale) for name, text in match.groupdict().items()}
            return _fill(translated, parts)
    if "\n" in message:  # a report (dataset counts, two model hints): one message a line, each as far as known
        lines = [translate_message(line, locale) for line in message.split("\n")]
        return "\n".join(lines) if lines != message.split("\n") else None
    if "; " in message:  # several validation errors in one
        pieces = [_translated(part, locale) for part in message.split("; ")]
        if all(piece is not None for piece in pieces):
            return "; ".join(piece for piece in pieces if piece is not None)
    head, colon, tail = message.partition(": ")
    if colon and head and tail:  # "file.safetensors: <message>", "width: <message>"
        rest = _translated(tail, locale)
        if rest is not None:
            return f"{head}: {rest}"
    return None


def session_locale(request: gr.Request | None = None) -> str:
    """The language the page of this request shows (its cookie), else the browser's first language.

    Without an explicit request, the one of the Gradio event being handled (the context gr.Info/gr.Warning use).
    """
    request = request if request is not None else LocalContext.request.get(None)
    if request is None:
        return ENGLISH
    cookies = getattr(request, "cookies", None) or {}
    shown = cookies.get(LOCALE_COOKIE)  # <html lang> of the page, which its script keeps in this cookie
    if shown and shown != "Auto":
        return CHINESE if shown.lower() == CHINESE.lower() else ENGLISH
    headers = getattr(request, "headers", None) or {}
    first = (headers.get("accept-language") or "").split(",")[0].split(";")[0].strip()
    # Gradio picks the page's table from navigator.language, whose first choice Accept-Language carries.
    return CHINESE if first.lower() == CHINESE.lower() else ENGLISH


def catalogued(text: str) -> str:
    """Marks English text kept in a table (labels, phases) as a catalogue key; `ui_message` translates it later."""
    return text


def ui_text(template: str, /, **values: Any) -> str:
    """Text this app writes (a toast, a status line, an HTML label), from its English catalogue template."""
    return translate_template(template, session_locale(), **values)


def ui_message(message: str) -> str:
    """A message made by a lower layer (an error's text, a result's warning) in the session's language."""
    return translate_message(message, session_locale())


def shown_error(text: str) -> gr.Error:
    """An error toast with its title in the session's language: `raise shown_error(ui_text("…"))`."""
    return gr.Error(text, title=ui_text("Error"))


def show_warning(text: str) -> None:
    gr.Warning(text, title=ui_text("Warning"))


def show_info(text: str) -> None:
    gr.Info(text, title=ui_text("Info"))


def ui_error(error: BaseException) -> gr.Error:
    """The toast for a user's mistake caught by a handler: `raise ui_error(error) from None`."""
    return shown_error(ui_message(str(error)))
