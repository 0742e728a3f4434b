"""Architecture rules that code review alone would let slip."""

import ast
from pathlib import Path

from tests.conftest import REPO

# The house by concern, bottom to top: a module may import its own layer and the ones below, never above.
# The loose modules (settings, errors, shared types, units, escaping, file modes, metrics) are the ground.
LAYERS = {
    "config": 0, "errors": 0, "types": 0, "units": 0, "private": 0, "terminal": 0, "markdown": 0, "metrics": 0,
    "beir": 0, "citations": 0, "llm": 1, "documents": 2, "index": 3, "policy": 4, "answer": 5, "chat": 6, "runtime": 7,
    "ui": 8, "fakes": 8, "bench": 9, "eval": 9, "cli": 10,
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def _rag_imports(path: Path) -> set[str]:
    """The rag modules a file imports, as dotted names (`rag.index.search`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("rag."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rag."):
            names.add(node.module)
    return names


def _part(module: str) -> str:
    return module.split(".")[1]


def test_only_app_and_the_ui_package_import_chainlit() -> None:
    offenders = [p.relative_to(REPO) for p in (REPO / "rag").rglob("*.py")
                 if "chainlit" in _imports(p) and p.relative_to(REPO).parts[1] != "ui"]
    assert offenders == []


def test_app_imports_chainlit() -> None:
    assert "chainlit" in _imports(REPO / "app.py")  # the rule above is meaningful only if the app exists


def test_no_print_in_library_code() -> None:
    offenders = []
    for path in (REPO / "rag").rglob("*.py"):
        if path.relative_to(REPO).parts[1] == "cli":
            continue
        tree = ast.parse(path.read_text())
        # A module's own command line (`def main`, run with `python -m ...`) may print; nothing else.
        allowed = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "main"
                   for n in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print" and id(node) not in allowed:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


def test_every_package_and_loose_module_has_a_layer() -> None:
    parts = {p.relative_to(REPO / "rag").parts[0].removesuffix(".py") for p in (REPO / "rag").iterdir()
             if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").exists()}
    assert parts - set(LAYERS) == set(), "give the new package or module a layer above"


def test_no_module_imports_a_higher_layer() -> None:
    offenders = []
    for path in (REPO / "rag").rglob("*.py"):
        module = "rag." + ".".join(path.relative_to(REPO / "rag").with_suffix("").parts)
        if module.endswith("__init__") or module.count(".") < 1:
            continue
        mine = LAYERS.get(_part(module))
        for target in _rag_imports(path):
            theirs = LAYERS.get(_part(target))
            if mine is not None and theirs is not None and theirs > mine:
                offenders.append(f"{module} -> {target}")
    assert offenders == []


def test_no_import_cycles_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for path in (REPO / "rag").rglob("*.py"):
        module = "rag." + ".".join(path.relative_to(REPO / "rag").with_suffix("").parts)
        graph[module.removesuffix(".__init__")] = {t for t in _rag_imports(path)}
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if seen.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in seen and (cycle := visit(nxt, [*path, node])):
                return cycle
        seen[node] = 2
        return None

    for start in sorted(graph):
        if start not in seen:
            assert (cycle := visit(start, [])) is None, " -> ".join(cycle or [])
