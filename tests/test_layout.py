"""The package's house: every import of every module (top-level and inside functions), read with
``ast``, runs downward through the rooms; there is no import circle, and no library module imports
a command (only the ``__main__`` modules do)."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "keras_openpose"

#: The rooms from the bottom up: a module may import its own room and the rooms below it.
ROOMS = ["base", "data", "model", "evaluate", "inference", "train", "ensemble", "export", "predict",
         "quickstart", "cli", "api"]
BASE = {"errors", "files", "rooms", "skeleton", "codec", "config", "visualize"}


def _modules():
    mods = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _imports(name, path, mods):
    """The package modules ``name`` imports (absolute names)."""
    tree = ast.parse(path.read_text())
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            base = pkg.split(".")[:len(pkg.split(".")) - n.level + 1] if n.level else []
            target = ".".join(base + ([n.module] if n.module else [])) if n.level else (n.module or "")
            for a in n.names:
                full = f"{target}.{a.name}"
                if full in mods:
                    out.add(full)
                elif target in mods:
                    out.add(target)
        elif isinstance(n, ast.Import):
            out |= {a.name for a in n.names if a.name in mods}
    out.discard(name)
    return out


def _room(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "api"        # keras_openpose/__init__.py: the public names, loaded on first use
    return "base" if parts[1] in BASE else parts[1]


def _graph():
    mods = _modules()
    return {m: _imports(m, p, mods) for m, p in mods.items()}


def test_the_import_graph_has_no_circle():
    graph = _graph()
    state, stack, circles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                circles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_imports_run_downward_and_no_library_module_imports_a_command():
    graph = _graph()
    assert set(map(_room, graph)) <= set(ROOMS), set(map(_room, graph)) - set(ROOMS)
    upward = [f"{m} -> {t}" for m, ts in graph.items() for t in ts
              if ROOMS.index(_room(t)) > ROOMS.index(_room(m)) and not m.endswith("__main__")]
    assert not upward, "imports that run up: " + ", ".join(sorted(upward))
    commands = [m for m, ts in graph.items() if any(_room(t) == "cli" for t in ts)
                and _room(m) != "cli" and not m.endswith("__main__")]
    assert not commands, f"library modules that import a command: {commands}"
    # the test can fail: an arrow from the codec to the ensemble would be caught
    assert ROOMS.index(_room("keras_openpose.ensemble.routing")) > ROOMS.index(_room("keras_openpose.codec"))


def test_every_public_name_of_a_room_is_where_its_table_says():
    """Each room's lazy table (``_NAMES``) names a module that defines the name, and every public
    top-level name of the room's modules is in the table (the table cannot drift from the code)."""
    import importlib
    for room in ("data", "model", "train", "inference", "evaluate", "ensemble", "cli"):
        pkg = importlib.import_module(f"keras_openpose.{room}")
        for name, module in pkg._NAMES.items():
            tree = ast.parse((PACKAGE / room / f"{module}.py").read_text())
            defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            defined |= {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                        for t in ast.walk(n.targets[0] if isinstance(n, ast.Assign) else n.target)
                        if isinstance(t, ast.Name)}
            assert name in defined, f"keras_openpose.{room}: {name} is not defined in {module}.py"
        for f in (PACKAGE / room).glob("*.py"):
            if f.name.startswith("__") or (room, f.stem) == ("cli", "common"):   # cli.common: flag helpers
                continue
            tree = ast.parse(f.read_text())
            public = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))
                      and not n.name.startswith("_")}
            missing = public - set(pkg._NAMES)
            assert not missing, f"keras_openpose.{room}: {sorted(missing)} of {f.name} are not in its _NAMES"
    import pytest
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        importlib.import_module("keras_openpose.data").no_such_name
