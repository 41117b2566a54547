"""Every import in webui/ (function-local ones included) points down the layer table in ARCHITECTURE.md."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

WEBUI = Path(__file__).resolve().parent.parent / "webui"

# Lower number = lower layer; a module may import only its own layer or lower ones (ARCHITECTURE.md).
LAYERS: dict[str, int] = {
    "prompts": 1,
    "conditioning": 2,
    "networks": 3,
    "models": 4,
    "sampling": 5,
    "processing": 6,
    # Cores over processing that every front end shares (one script API, one trainer); not each other.
    "scripts": 7,
    "training": 7,
    # Front ends: thin adapters over processing and those cores; they never import each other.
    "ui": 8,
    "api": 8,
    # Scale-out: serves the API's own routes from many replicas.
    "serve": 9,
}
# Leaves any layer may import; they import no layer themselves.
SHARED_LEAVES = {"paths", "errors", "files", "offline", "safetensors_header"}
# Top-level files that only glue the package together.
PACKAGE_ROOT_FILES = {"__init__"}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import statement anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from webui import ui` names a package through the alias, not the module.
            if module == "webui":
                found.extend((node.lineno, f"webui.{alias.name}") for alias in node.names)
    return found


def _part(module: str) -> str | None:
    """The layer or leaf name of a webui module (`webui.processing.txt2img` -> `processing`)."""
    parts = module.split(".")
    if parts[0] != "webui" or len(parts) < 2:
        return None
    return parts[1]


def layering_violations(root: Path = WEBUI) -> list[str]:
    problems: list[str] = []
    for path in sorted(root.rglob("*.py")):
        importer = _part(_module_name(path, root))
        if importer is None or importer in PACKAGE_ROOT_FILES:
            continue
        for line, module in _imported_modules(path, root):
            target = _part(module)
            if target is None or target == importer:
                continue
            where = f"{path.relative_to(root.parent)}:{line} imports {module}"
            if target in SHARED_LEAVES:
                continue
            if importer in SHARED_LEAVES:
                problems.append(f"{where}: shared leaf `{importer}` may not import a layer")
                continue
            if importer not in LAYERS:
                problems.append(f"{where}: `{importer}` is not in the layer table (ARCHITECTURE.md)")
                continue
            if target not in LAYERS:
                problems.append(f"{where}: `{target}` is not in the layer table (ARCHITECTURE.md)")
                continue
            if LAYERS[target] > LAYERS[importer]:
                problems.append(f"{where}: upward import ({importer} is layer {LAYERS[importer]}, {target} is "
                                f"layer {LAYERS[target]})")
            elif LAYERS[target] == LAYERS[importer]:
                problems.append(f"{where}: adapters `{importer}` and `{target}` must not import each other")
    return problems


def test_no_upward_imports() -> None:
    problems = layering_violations()
    assert not problems, "layering violations:\n" + "\n".join(problems)


def test_every_package_is_in_the_table() -> None:
    for child in WEBUI.iterdir():
        if child.is_dir() and (child / "__init__.py").exists():
            assert child.name in LAYERS, f"webui/{child.name} is missing from the layer table"
        elif child.suffix == ".py":
            assert child.stem in SHARED_LEAVES | PACKAGE_ROOT_FILES, f"webui/{child.name} is not a declared leaf"


@pytest.mark.parametrize(
    ("importer", "source", "expected"),
    [
        ("sampling/bad.py", "def f():\n    from webui.processing import txt2img\n", "upward import"),
        ("prompts/bad.py", "import webui.conditioning.chunks\n", "upward import"),
        ("networks/bad.py", "from ..models import loader\n", "upward import"),
        ("ui/bad.py", "from webui.api import server\n", "must not import each other"),
        ("paths.py", "from webui.models import registry\n", "shared leaf"),
        ("processing/ok.py", "from webui.sampling import registry\nfrom webui import files\n", None),
    ],
)
def test_checker_catches_upward_imports(tmp_path: Path, importer: str, source: str, expected: str | None) -> None:
    root = tmp_path / "webui"
    target = root / importer
    target.parent.mkdir(parents=True, exist_ok=True)
    (root / "__init__.py").write_text("")
    (target.parent / "__init__.py").write_text("")
    target.write_text(source)
    problems = layering_violations(root)
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1 and expected in problems[0], problems
