"""Find, by reading the code, every English message the UI can show at run time, as a catalogue template.

UI code: the literal first argument of `ui_text(...)` / `catalogued(...)`, and every toast (which must go through
the translator's show_info / show_warning / shown_error). Lower layers: the text of user errors they raise, result
warnings, training phases and the lines of their reports (`summary()`, `hint()`); an f-string's values become
`{placeholders}`.
"""
from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass
from pathlib import Path

from webui.errors import UserInputError

REPO = Path(__file__).resolve().parents[2]
WEBUI = REPO / "webui"
UI = WEBUI / "ui"
TRANSLATORS = {"ui_text", "ui_message", "ui_error"}
TOASTS = {"Info", "Warning", "Error"}
TOAST_HELPERS = {"show_info", "show_warning", "shown_error"}
# Front ends that never show text in the web UI: the HTTP API, the Ray Serve adapter, and command-line-only modules.
NOT_SHOWN_IN_UI = ("webui/api/", "webui/serve/", "webui/models/bake.py", "webui/models/bake_cli.py",
                   "webui/training/train_network.py")
REPORT_FUNCTIONS = re.compile(r"^(summary|hint|\w+_hint|\w+_problem|_no_data_message)$")
# Request types: every ValueError raised there becomes part of "Invalid request: …".
VALIDATION_MODULES = ("webui/processing/request.py",)


@dataclass(frozen=True)
class Found:
    template: str
    where: str


def _placeholder(node: ast.expr) -> str:
    name = re.sub(r"[^0-9A-Za-z]+", "_", ast.unparse(node)).strip("_").lower()
    return "{" + (name[:40] or "value") + "}"


def template_of(node: ast.expr) -> list[str]:
    """The templates a string expression can produce (two for `a if c else b`); [] when it has no fixed text."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value.replace("{", "{{").replace("}", "}}")]
    if isinstance(node, ast.JoinedStr):
        out = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                out.append(str(value.value).replace("{", "{{").replace("}", "}}"))
            elif isinstance(value, ast.FormattedValue):
                out.append(_placeholder(value.value))
        return ["".join(out)]
    if isinstance(node, ast.IfExp):
        return template_of(node.body) + template_of(node.orelse)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = template_of(node.left) or [_placeholder(node.left)]
        right = template_of(node.right) or [_placeholder(node.right)]
        return [a + b for a in left for b in right]
    return []


def has_words(template: str) -> bool:
    fixed = re.sub(r"\{[^{}]*\}", "", template.replace("{{", "").replace("}}", ""))
    return bool(re.search(r"[A-Za-z]{2,}", fixed))


def _module(path: Path):
    return importlib.import_module(".".join(path.relative_to(REPO).with_suffix("").parts))


def _is_user_error(node: ast.expr, module) -> bool:
    try:
        cls = eval(ast.unparse(node), vars(module))  # a name or dotted name the module imported  # noqa: S307
    except Exception:
        return False
    return isinstance(cls, type) and issubclass(cls, UserInputError)


def _in_validator(stack: list[ast.AST]) -> bool:
    """A ValueError raised inside a pydantic validator reaches users as "Invalid request: …"."""
    return any(isinstance(node, ast.FunctionDef) and any("validator" in ast.unparse(d) for d in node.decorator_list)
               for node in stack)


def _walk(node: ast.AST, stack: list[ast.AST]):
    yield node, stack
    for child in ast.iter_child_nodes(node):
        yield from _walk(child, [*stack, node])


def lower_layer_messages() -> list[Found]:
    """Messages made outside webui/ui (and user errors raised by UI helpers) that a page can show."""
    found: list[Found] = []
    for path in sorted(WEBUI.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith(NOT_SHOWN_IN_UI):
            continue
        module = _module(path)
        for node, stack in _walk(ast.parse(path.read_text(encoding="utf-8")), []):
            texts: list[ast.expr] = []
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                if _is_user_error(node.exc.func, module) or (
                        ast.unparse(node.exc.func) == "ValueError" and (_in_validator(stack)
                                                                        or rel in VALIDATION_MODULES)):
                    texts.append(node.exc.args[0])
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                owner = ast.unparse(node.func.value)
                if node.func.attr == "append" and owner.endswith("warnings"):
                    texts.append(node.args[0])
                elif node.func.attr == "_report":
                    texts += node.args[:2]
            elif isinstance(node, ast.AugAssign) and ast.unparse(node.target).endswith("warnings"):
                value = node.value
                texts += [value.elt] if isinstance(value, ast.ListComp) else list(getattr(value, "elts", []))
            elif isinstance(node, ast.keyword) and node.arg == "phase":
                texts.append(node.value)
            elif isinstance(node, ast.Assign) and any(ast.unparse(t).endswith((".phase", "_WARNING"))
                                                      for t in node.targets):
                texts.append(node.value)
            elif isinstance(node, ast.FunctionDef) and REPORT_FUNCTIONS.match(node.name) and not rel.startswith(
                    "webui/ui/"):
                texts += [n for n in ast.walk(node) if isinstance(n, ast.JoinedStr)]
                texts += [n for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                          and " " in n.value and n not in _not_text(node)]
            for text in texts:
                found += [Found(t, f"{rel}:{getattr(text, 'lineno', '?')}") for t in template_of(text)
                          if has_words(t)]
    return found


def _not_text(function: ast.FunctionDef) -> set[ast.AST]:
    """Strings that are no message of their own: pieces of an f-string (reported with it), the docstring, and path
    parts (`root / "10_sks dog"`)."""
    parts: set[ast.AST] = {value for node in ast.walk(function) if isinstance(node, ast.JoinedStr)
                           for value in node.values}
    parts |= {node.right for node in ast.walk(function) if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)}
    if function.body and isinstance(function.body[0], ast.Expr):
        parts.add(function.body[0].value)
    return parts


def ui_templates() -> list[Found]:
    """Literal templates the UI code hands to `ui_text` / marks with `catalogued`."""
    found = []
    for path in sorted(UI.glob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                    "ui_text", "catalogued") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.append(Found(arg.value, f"{rel}:{node.lineno}"))
                else:
                    found.append(Found(f"<not a literal: {ast.unparse(arg)}>", f"{rel}:{node.lineno}"))
    return found


def _translated_expression(node: ast.expr) -> bool:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id in TRANSLATORS
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _translated_expression(node.left) and _translated_expression(node.right)
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and not has_words(node.value)


def untranslated_toasts() -> list[str]:
    """Toasts in webui/ui that bypass the translator: a direct gr.Info/gr.Warning/gr.Error (its title would stay
    English), or a show_info/show_warning/shown_error whose message does not come from ui_text/ui_message."""
    bad = []
    for path in sorted(UI.glob("*.py")):
        if path.name == "messages.py":  # the translator itself
            continue
        rel = path.relative_to(REPO).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name in {f"gr.{toast}" for toast in TOASTS}:
                bad.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
            elif name in TOAST_HELPERS and not (node.args and _translated_expression(node.args[0])):
                bad.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    return bad
