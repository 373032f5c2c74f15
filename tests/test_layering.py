"""The package's import structure (issue 32): no import circles between modules (imports inside
functions included), no import that runs up the layer map of docs/architecture.md, recipes that never
import each other, and the demo's world imported only by the demo. Read from the source with `ast`,
nothing is imported."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

DOC = SRC.parent / "docs" / "architecture.md"


def read_layers(text: str) -> list[tuple[str, ...]]:
    """The layer table of docs/architecture.md ("The map"): `N  rvlf.a, rvlf.b  what they hold` lines,
    bottom first; a package stands for all its modules; a more specific name wins."""
    block = text.split("## The map", 1)[1].split("```", 2)[1]
    by_layer: dict[int, list[str]] = {}
    for line in block.splitlines():
        m = re.match(r"\s*(\d+)\s+(rvlf[\w.]*(?:,\s*rvlf[\w.]*)*)(?:\s{2,}|$)", line)
        if m:
            by_layer.setdefault(int(m.group(1)), []).extend(n.strip() for n in m.group(2).split(","))
    assert sorted(by_layer) == list(range(len(by_layer))), "layers numbered 0..N"
    return [tuple(by_layer[i]) for i in range(len(by_layer))]


LAYERS = read_layers(DOC.read_text(encoding="utf-8"))
RECIPES = ("rvlf.train.pretrain", "rvlf.train.sft", "rvlf.train.grpo")


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "rvlf").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str:
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports(module: str) -> dict[str, int]:
    """rvlf modules `module` imports -> the first line that does, at any depth (functions included).
    `from rvlf import __version__` (the package's version constant; `rvlf/__init__.py` imports nothing at
    module level) is not counted: every layer may read it."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                if full in MODULES:
                    names.append(full)
                elif not (base == "rvlf" and a.name == "__version__"):
                    names.append(base)
        for name in names:
            if name == "rvlf" or name.startswith("rvlf."):
                target = _resolve(name)
                if target != module:
                    out.setdefault(target, node.lineno)
    return out


GRAPH = {m: imports(m) for m in MODULES}


def layer(module: str) -> int:
    best, index = -1, None
    for i, names in enumerate(LAYERS):
        for name in names:
            package = name != "rvlf"  # the package `rvlf` itself is its `__init__` only
            if (module == name or (package and module.startswith(name + "."))) and len(name) > best:
                best, index = len(name), i
    assert index is not None, f"{module} is in no layer of the map: add it to LAYERS and docs/architecture.md"
    return index


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_reader_sees_imports_inside_functions_and_relative_imports():
    assert "rvlf.train.evaluation" in GRAPH["rvlf.train.loop"]  # module level
    assert "rvlf.inference.api" in GRAPH["rvlf"]  # inside `__getattr__`
    assert "rvlf.train.grpo" in GRAPH["rvlf.commands.grpo"]  # inside `run`
    assert "rvlf.train.checkpoint" in GRAPH["rvlf.inference.loading"]  # `from rvlf.train import checkpoint`
    assert "rvlf" not in GRAPH["rvlf.cli"]  # `from rvlf import __version__`


def test_no_import_circles():
    assert _cycles(GRAPH) == []


def test_a_circle_is_found():  # the check itself: a two-module and a three-module circle
    graph = {"a": {"b": 1}, "b": {"a": 1}, "c": {"d": 1}, "d": {"e": 1}, "e": {"c": 1}, "f": {"a": 1}}
    assert sorted(_cycles(graph)) == [["a", "b"], ["c", "d", "e"]]


def test_imports_never_run_up_the_layer_map():
    upward = [f"{MODULES[m].relative_to(SRC)}:{line}: {m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
              for m, targets in sorted(GRAPH.items()) for t, line in targets.items() if layer(t) > layer(m)]
    assert upward == []


def test_recipes_never_import_each_other_and_only_their_command_and_the_demo_import_them():
    for recipe in RECIPES:
        users = sorted(m for m, targets in GRAPH.items() if recipe in targets)
        command = "rvlf.commands." + recipe.rsplit(".", 1)[1]
        assert set(users) <= {command, "rvlf.runs.demo"}, (recipe, users)


def test_the_demo_world_is_imported_by_the_demo_only():
    users = {m for m, targets in GRAPH.items() for t in targets
             if t.startswith("rvlf.synth") and not m.startswith("rvlf.synth")}
    assert users <= {"rvlf.runs.demo"}, users


def test_the_map_is_read_from_the_docs():
    assert LAYERS[0] == ("rvlf.errors",) and "rvlf.commands" in LAYERS[-2] and "rvlf.cli" in LAYERS[-1]
    assert layer("rvlf.train.loop") > layer("rvlf.models.vlp") > layer("rvlf.data.readers") > layer("rvlf.config")
    assert layer("rvlf.text.significance") < layer("rvlf.rl.rewards")  # rl may use text, never the reverse


def test_tests_share_helpers_not_each_other():
    """Shared test code is in tests/helpers.py (and media_helpers.py); conftest.py holds fixtures only."""
    offenders = []
    for path in sorted((SRC.parent / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}:{node.lineno}: {n}" for n in names if n == "conftest" or n.startswith("test_")]
    assert offenders == []


def test_no_module_imports_another_modules_private_names():
    """A `_name` is its module's own: `from rvlf.x import _helper` elsewhere is a hidden dependency
    (`rvlf.synth.lm` once imported `rvlf.synth.corpus._atomic_write`)."""
    offenders = []
    for module, path in sorted(MODULES.items()):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rvlf"):
                offenders += [f"{path.relative_to(SRC)}:{node.lineno}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert offenders == []


def imports_inside_functions_without_reason(path: Path) -> list[int]:
    """Lines of the import statements inside functions of `path` that carry no comment. A run of
    consecutive import statements counts as one: a comment on the line just above the run, or on
    any line of it, gives the run its reason (docs/architecture.md: an import is deferred only on
    purpose, to keep a heavy library out of `rvlf --help` and the config checks, and says so)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    missing = []
    for fn in ast.walk(ast.parse(text)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            for field in ("body", "orelse", "finalbody", "handlers"):
                block = getattr(node, field, None)
                if not isinstance(block, list) or (node is not fn and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))):
                    continue
                run: list[ast.stmt] = []
                for stmt in block + [None]:
                    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                        run.append(stmt)
                        continue
                    if run:
                        first, last = run[0].lineno, run[-1].end_lineno
                        above = lines[first - 2].strip() if first >= 2 else ""
                        if not above.startswith("#") and not any("#" in lines[i] for i in range(first - 1, last)):
                            missing.append(first)
                        run = []
    return sorted(set(missing))


def test_imports_inside_functions_say_why():
    offenders = [f"{path.relative_to(SRC)}:{line}" for path in sorted(MODULES.values())
                 for line in imports_inside_functions_without_reason(path)]
    assert offenders == [], f"{len(offenders)} imports inside functions without a reason comment: {offenders}"


def test_the_reason_check_reads_runs_and_comments(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("def a():\n    import json\n    return json\n\n"
                      "def b():\n    # torch: deferred, `rvlf --help` stays fast\n    import torch\n    import numpy\n\n"
                      "def c():\n    x = 1\n    from os import path  # deferred: the reason\n\n"
                      "def d():\n    if True:\n        from os import (\n            sep)\n", encoding="utf-8")
    assert imports_inside_functions_without_reason(sample) == [2, 16]


def test_every_package_is_a_regular_package():
    """Each folder of modules under src/rvlf has an `__init__.py`: setuptools' `packages.find` (pyproject)
    leaves namespace packages out of a wheel, so a module folder without one works from a checkout and
    is missing after `pip install` (src/rvlf/runs/__init__.py was once left out by a .gitignore pattern)."""
    folders = {p.parent for p in (SRC / "rvlf").rglob("*.py") if "__pycache__" not in p.parts}
    assert sorted(str(f.relative_to(SRC)) for f in folders if not (f / "__init__.py").is_file()) == []
