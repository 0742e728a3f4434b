"""Architecture rules that code review alone would let slip."""

import ast
from pathlib import Path

from tests.conftest import REPO


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_rag_package_never_imports_chainlit() -> None:
    offenders = [p.relative_to(REPO) for p in (REPO / "rag").rglob("*.py") if "chainlit" in _imports(p)]
    assert offenders == []


def test_app_imports_chainlit() -> None:
    assert "chainlit" in _imports(REPO / "app.py")  # the rule above is meaningful only if the app exists


def test_no_print_in_library_code() -> None:
    offenders = []
    for path in (REPO / "rag").rglob("*.py"):
        if path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []
