"""The shape of the code (issue 16, docs/services.md): no import cycles between modules of
the project, and the dependencies point one way — services use motcua_common; the
one-machine platform (motcua_platform) uses both; motcua_common uses neither."""
from __future__ import annotations

import ast
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-dir"]
SERVICES = {p for p in PACKAGE_DIRS if p not in ("motcua_common", "motcua_platform")}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in (ROOT / folder).rglob("*.py"):
            relative = path.relative_to(ROOT / folder)
            if relative.parts[0] == "tests":
                continue
            parts = [package, *relative.with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> set[str]:
    """The project's modules that `module` imports, at the top or inside a function alike."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    targets = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # Imports only a type checker runs (`if TYPE_CHECKING:`) are not part of the graph.
    typing_only = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for inner in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            names = [stem] + [f"{stem}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
    return targets


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, on_stack, stack, result, counter = {}, {}, set(), [], [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for successor in GRAPH.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return result


def test_the_graph_sees_the_project():
    assert "motcua_platform.cli" in GRAPH and "motcua_common.outbox" in GRAPH
    assert "motcua_common.config" in GRAPH["motcua_platform.cli"]


def test_no_import_cycles():
    cycles = _cycles()
    assert not cycles, "modules that import each other (directly or round a loop): " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_dependencies_point_one_way():
    wrong = []
    for module, targets in GRAPH.items():
        top = module.split(".")[0]
        for target in targets:
            other = target.split(".")[0]
            if top == "motcua_common" and other != "motcua_common":
                wrong.append(f"{module} -> {target} (the shared library imports no service and no platform code)")
            elif top in SERVICES and other == "motcua_platform":
                wrong.append(f"{module} -> {target} (a service never imports the one-machine platform)")
            elif top in SERVICES and other in SERVICES and other != top:
                wrong.append(f"{module} -> {target} (services talk through events and RPC, not imports)")
    assert not wrong, "\n".join(sorted(wrong))
