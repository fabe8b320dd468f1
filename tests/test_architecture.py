"""The tree keeps its layering (docs/architecture.md): no import cycle between bridge's modules, and
none between its packages, so imports point one way. Imports under `if TYPE_CHECKING:` do not run
and are not counted; imports inside functions are (a lazy import still ties two modules together)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

BRIDGE = Path(__file__).resolve().parents[1] / "bridge"
PURE_PACKAGES = ("kyc", "persona")  # standard library only: no I/O, no third-party imports
PURE_THIRD_PARTY = ("itsdangerous",)


def module_name(path: Path) -> str:
    parts = path.relative_to(BRIDGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(path: Path) -> set[str]:
    """The modules `path` imports when it runs (top level or inside functions), as written."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for orelse in child.orelse:
                    visit(orelse)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                # `from bridge.kyc import states` imports bridge.kyc.states: keep both spellings
                found.add(child.module)
                found.update(f"{child.module}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The bridge modules `path` imports at run time; a package counts only when nothing below it is named."""
    found = runtime_imports(path) & known
    return {name for name in found if not any(other.startswith(name + ".") for other in found)}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in BRIDGE.rglob("*.py")}
    known = set(paths)
    # A package's __init__ is imported whenever one of its modules is; it is not an edge of its own.
    return {name: imported_modules(path, known) - {name} for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def package_of(module: str) -> str:
    """bridge.outbox.worker -> outbox; bridge.audit -> audit (a top-level module is its own unit)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "bridge"


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        source = package_of(module)
        packages.setdefault(source, set()).update(package_of(t) for t in targets if package_of(t) != source)
    packages.pop("bridge", None)  # bridge/__init__.py holds only the version
    return packages


def test_no_import_cycle_between_modules():
    assert find_cycle(import_graph()) is None, f"import cycle: {' -> '.join(find_cycle(import_graph()) or [])}"


def test_no_import_cycle_between_packages():
    cycle = find_cycle(package_graph(import_graph()))
    assert cycle is None, f"packages import each other: {' -> '.join(cycle or [])}"


def test_pure_packages_do_no_io():
    """kyc/ and persona/ hold the rules: the standard library, itsdangerous (signing, no I/O) and each other."""
    offenders = []
    for package in PURE_PACKAGES:
        for path in (BRIDGE / package).rglob("*.py"):
            for imported in runtime_imports(path):
                parts = imported.split(".")
                allowed = (parts[0] in sys.stdlib_module_names or parts[0] in PURE_THIRD_PARTY
                           or parts[0] == "__future__" or (parts[0] == "bridge" and len(parts) > 1
                                                           and parts[1] in PURE_PACKAGES))
                if not allowed:
                    offenders.append(f"{module_name(path)} imports {imported}")
    assert not offenders


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
