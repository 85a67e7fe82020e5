"""The package's import rules, read from the source (cheap, no imports run): no import cycles
between its modules (the kind registry imports the kinds; a kind never imports the registry
back), and the kinds do not reach into the stages above them."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "netwarden_models"
STAGES = ("train", "evaluate", "select", "bundle", "cli", "registry")


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Every module -> the package modules it imports (at any depth in the file)."""
    mods = {module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")
                    up = up[: len(up) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    deps.add(target if target in mods else base)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[mod] = {d for d in deps if d in mods and d != mod and not mod.startswith(d + ".")}
    return graph


def test_no_import_cycles():
    graph = imports()
    assert "netwarden_models.registry" in graph and "netwarden_models.kinds.base" in graph
    state: dict[str, int] = {}

    def visit(mod, path):
        state[mod] = 1
        for dep in sorted(graph[mod]):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path + [mod, dep]))
            if dep not in state:
                visit(dep, path + [mod])
        state[mod] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [])


def test_kinds_import_neither_the_registry_nor_the_stages():
    for mod, deps in imports().items():
        if mod.startswith("netwarden_models.kinds"):
            bad = {d for d in deps if d.split(".")[1] in STAGES}
            assert not bad, f"{mod} imports {sorted(bad)}"
