"""Import layering of kanal's packages, checked over every import statement (those inside
functions and under TYPE_CHECKING too). Exit 1, listing each problem, on:

- an import of a higher layer, or of a sibling room of the same layer;
- an import cycle among modules.

Run by `make lint`: `python scripts/check_layers.py [ROOT]`.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

# Highest first. Rooms on one line are siblings: neither imports the other. A module may
# import its own room and every room of a lower line.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("gateway.cli",),
    ("gateway.process",),
    ("gateway.web",),
    ("gateway.intake", "gateway.pipeline", "gateway.crm", "gateway.notify"),
    ("gateway.base",),
    ("gateway.store",),
    ("normalizers",),
    ("connectors",),
    ("crm_client",),  # one HTTP helper (Retry-After) serves the connectors' senders too
)
PACKAGES = ("gateway", "connectors", "normalizers", "crm_client")
SKIP = ("migrations",)
USERS = (
    "tests",
    "bench",
    "scripts",
)  # not layered, but their imports must exist  # Alembic's scripts are run by Alembic, not imported


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if any(part in SKIP for part in path.relative_to(root).parts):
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports(module: str, path: Path) -> Iterator[tuple[int, str, str]]:
    """(line, module imported from, dotted name) of every import in the file, relative ones
    made absolute; for `import a.b` both are "a.b"."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            prefix = ".".join([*base, *([node.module] if node.module else [])])
            yield node.lineno, prefix, prefix
            for alias in node.names:
                yield node.lineno, prefix, f"{prefix}.{alias.name}"


def missing(source: str, name: str, known: dict[str, Path]) -> str | None:
    """What an import names that is not there: a kanal module, or a name `from` a kanal
    package that is neither a module of it nor bound in its __init__.py."""
    if source.split(".")[0] not in PACKAGES:
        return None
    if source not in known:
        return source
    if name == source or name in known or known[source].name != "__init__.py":
        return None
    bound = _bound_names(known[source])
    return None if name.rpartition(".")[2] in bound else name


def _bound_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def resolve(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def room_of(module: str) -> tuple[int, str] | None:
    """(layer index, room) of a module; lower index = higher layer."""
    best: tuple[int, str] | None = None
    for index, rooms in enumerate(LAYERS):
        for room in rooms:
            if (module == room or module.startswith(room + ".")) and (
                best is None or len(room) > len(best[1])
            ):
                best = (index, room)
    return best


def check(root: Path) -> list[str]:
    known = modules(root)
    problems = []
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        edges = graph.setdefault(module, set())
        mine = room_of(module)
        for line, source, name in imports(module, path):
            where = f"{path.relative_to(root)}:{line}"
            gone = missing(source, name, known)
            if gone is not None:
                # mypy (ignore_missing_imports) would not say it: a module moved away.
                problems.append(f"{where}: {module} imports what does not exist: {gone}")
                continue
            target = resolve(name, known)
            if target is None or target == module:
                continue
            edges.add(target)
            theirs = room_of(target)
            if mine is None or theirs is None or mine[1] == theirs[1]:
                continue
            if theirs[0] < mine[0]:
                problems.append(f"{where}: {module} ({mine[1]}) imports a higher layer: {target}")
            elif theirs[0] == mine[0]:
                problems.append(f"{where}: {module} ({mine[1]}) imports a sibling room: {target}")
    for folder in USERS:  # they import kanal too: a module moved away breaks them alike
        for path in sorted((root / folder).rglob("*.py")):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            for line, source, imported in imports(name, path):
                gone = missing(source, imported, known)
                if gone is not None:
                    problems.append(
                        f"{path.relative_to(root)}:{line}: imports what does not exist: {gone}"
                    )
    problems = list(dict.fromkeys(problems))  # `from a import b, c` names a twice
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems = check(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} layering problem(s)")
        return 1
    print(f"layers ok ({len(modules(root))} modules)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
