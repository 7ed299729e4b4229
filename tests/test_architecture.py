"""The package's layout rules, read from the source: no import cycles (function-local imports
included), lower layers never import higher ones, function-local imports only where marked, no
use of another module's private names, and modules and functions of a readable size.

docs/architecture.md draws the layers; docs/decisions.md lists the functions allowed over the limit.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "htflow"

#: lower numbers are lower layers; a module may import its own package and lower layers only
LAYERS = {
    "htflow": 0, "htflow.errors": 0, "htflow.settings": 0, "htflow.testing": 0,
    "htflow.utils": 1,
    "htflow.schemas": 2,
    "htflow.space": 3, "htflow.analysis": 3,
    "htflow.store": 4, "htflow.calculators": 4, "htflow.execution": 4,
    "htflow.search": 5, "htflow.datasets": 5,
    "htflow.report": 6,
    "htflow.campaign": 7,
    "htflow.api": 8, "htflow.server": 8,
    "htflow.cli": 9,
    "htflow.__main__": 10,
}
#: third-party packages a function may import lazily (heavy or optional), with a ``# heavy:`` comment
HEAVY = {"torch", "chgnet", "sevenn", "mace", "botorch", "gpytorch", "fireworks", "distributed", "dask",
         "dask_jobqueue", "bokeh", "optimade", "matminer", "pyarrow"}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _function_of(node: ast.AST, parents: dict) -> ast.AST | None:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return node
    return None


def _imports(name: str, path: Path) -> list[tuple[str, ast.AST, bool]]:
    """(imported htflow module or third-party name, node, function-local) for every import."""
    tree = ast.parse(path.read_text())
    parents = _parents(tree)
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        local = _function_of(node, parents) is not None
        if isinstance(node, ast.Import):
            out += [(a.name, node, local) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            out += [(m, node, local) for m in subs] or [(base, node, local)]
    return out


def _owner(module: str) -> str:
    """The htflow module (file) an imported dotted name lives in."""
    while module not in MODULES and "." in module:
        module = module.rsplit(".", 1)[0]
    return module


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in MODULES.items():
        for target, _node, _local in _imports(name, path):
            if target == "htflow" or target.startswith("htflow."):
                owner = _owner(target)
                if owner != name:
                    graph[name].add(owner)
    return graph


def _layer(module: str) -> tuple[str, int]:
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)
    return best, LAYERS[best]


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
    assert sum(len(v) for v in graph.values()) > 100  # the walk saw the package's imports


def test_lower_layers_never_import_higher_ones():
    wrong = []
    for name, targets in _graph().items():
        own, rank = _layer(name)
        for target in targets:
            other, other_rank = _layer(target)
            if other_rank > rank or (other_rank == rank and other != own and own != "htflow"):
                wrong.append(f"{name} ({own}, layer {rank}) imports {target} ({other}, layer {other_rank})")
    assert not wrong, "\n".join(sorted(wrong))


def _imports_heavy(module: str) -> bool:
    """Whether an htflow module imports a heavy package at its top (so importing it is heavy too)."""
    owner = _owner(module)
    return owner in MODULES and any(
        not local and set(target.split(".")) & HEAVY for target, _n, local in _imports(owner, MODULES[owner]))


def test_function_local_imports_only_for_heavy_packages_and_marked():
    wrong = []
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        for target, node, local in _imports(name, path):
            if not local:
                continue
            comment = " ".join(lines[node.lineno - 1: node.end_lineno])
            top = target.split(".")[0]
            if "# heavy:" in comment and (top in HEAVY or _imports_heavy(target)):
                continue
            if name.startswith("htflow.cli.") and top == "htflow" and "# lazy:" in comment:
                continue  # the command line imports a command's layers when it runs (start-up time)
            wrong.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not wrong, "function-local imports that are not marked heavy/lazy:\n" + "\n".join(wrong)


def test_no_module_uses_another_modules_private_names():
    wrong = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("htflow"):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        wrong.append(f"{name}: from {node.module} import {a.name}")
                    if f"{node.module}.{a.name}" in MODULES:
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("htflow"):
                        aliases[a.asname or a.name] = a.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                wrong.append(f"{name}: {node.value.id}.{node.attr} ({aliases[node.value.id]})")
    assert not wrong, "\n".join(wrong)


def _allowed_long_functions() -> set[str]:
    """``path:function`` entries of the "Functions over 60 lines" section of docs/decisions.md."""
    text = (ROOT / "docs" / "decisions.md").read_text()
    section = text.split("## Functions over 60 lines", 1)[1].split("\n## ", 1)[0] if "## Functions over 60 lines" in text else ""
    return set(re.findall(r"`(htflow/[\w/]+\.py:[\w.]+)`", section))


def test_modules_and_functions_stay_readable():
    allowed = _allowed_long_functions()
    long_modules, long_functions = [], []
    for path in MODULES.values():
        rel = path.relative_to(ROOT).as_posix()
        n = len(path.read_text().splitlines())
        if n > MAX_MODULE_LINES:
            long_modules.append(f"{rel}: {n} lines")
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES and f"{rel}:{node.name}" not in allowed:
                    long_functions.append(f"{rel}:{node.name}: {length} lines")
    assert not long_modules + long_functions, (
        "modules over 400 lines:\n" + "\n".join(long_modules)
        + "\nfunctions over 60 lines (not in docs/decisions.md):\n" + "\n".join(long_functions))


def test_the_command_line_starts_without_the_calculation_stack():
    """``htflow --version``, ``status`` and ``query`` start in about a second: importing the CLI must not
    import atomate2, emmet, torch or matplotlib (their commands import them when they run)."""
    code = ("import sys, htflow.cli; heavy = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'atomate2', 'emmet', 'torch', 'matplotlib', 'sklearn', 'dask', 'fastapi'}); print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
