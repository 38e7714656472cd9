"""The module graph of genae: no import circles, and imports flow one way down the layers
(DESIGN.md: cli → experiments → evaluate, plots, train → run directories → models → nets, data).
Imports inside functions count too. Read from the source with `ast`, nothing imported."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS = [   # lowest first; a module may import its own package or lower layers only
    ("genae.errors",),
    ("genae.files", "genae.options"),
    ("genae.device", "genae.data", "genae.nets"),
    ("genae.runtime",),
    ("genae.models",),
    ("genae.rundir",),
    ("genae.train",),
    ("genae.evaluate", "genae.plots", "genae.export"),
    ("genae.experiments", "genae.demo", "genae.explorer"),
    ("genae.cli", "genae"),
    ("genae.__main__",),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The genae modules `path` imports (a `from package import name` of a submodule counts as that submodule)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in modules}


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in (SRC / "genae").rglob("*.py")}
    modules = set(paths)
    return {name: imports(path, modules) - {name} for name, path in paths.items()}


def group(module: str) -> str:
    """The entry of LAYERS a module belongs to (the longest matching prefix)."""
    best = max((g for layer in LAYERS for g in layer if module == g or module.startswith(g + ".")), key=len)
    return best


def layer(module: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if group(module) in names)


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}   # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " → ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_imports_flow_down_the_layers():
    wrong = [f"{src} imports {dst}" for src, targets in graph().items() for dst in targets
             if group(dst) != group(src) and layer(dst) >= layer(src)]
    assert not wrong, "\n".join(sorted(wrong))


def test_models_know_nothing_of_training_or_evaluation():
    edges = graph()
    bad = [(m, d) for m, targets in edges.items() if m.startswith("genae.models")
           for d in targets if d.startswith(("genae.train", "genae.evaluate", "genae.rundir"))]
    assert not bad


def test_the_checker_sees_a_planted_cycle_and_an_upward_import(tmp_path, monkeypatch):
    """The walk itself works: a fake package with a circle and an upward arrow is caught."""
    pkg = tmp_path / "genae"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("")
    (pkg / "models" / "a.py").write_text("from genae.models import b\nfrom genae.train.engine import fit\n")
    (pkg / "models" / "b.py").write_text("def f():\n    import genae.models.a\n")
    (pkg / "train").mkdir()
    (pkg / "train" / "__init__.py").write_text("")
    (pkg / "train" / "engine.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "SRC", tmp_path)
    edges = graph()
    assert edges["genae.models.a"] == {"genae.models", "genae.models.b", "genae.train.engine"}
    assert edges["genae.models.b"] == {"genae.models.a"}
    try:
        test_no_import_cycles()
    except AssertionError as err:
        assert "genae.models.a → genae.models.b → genae.models.a" in str(err)
    else:
        raise AssertionError("the cycle was not found")
    try:
        test_imports_flow_down_the_layers()
    except AssertionError as err:
        assert "genae.models.a imports genae.train.engine" in str(err)
    else:
        raise AssertionError("the upward import was not found")
