"""The module structure, measured from the source with Python's ast, so that it stays true.

- No import cycles between the gate's modules (TYPE_CHECKING imports included).
- No late imports (inside a function) of the gate's own modules, except the few listed in
  DEFERRED with a reason; none of them hides a cycle (moved to the top, it would not close one).
- Every module belongs to a layer; an import from a lower layer to a higher one is listed
  in UPWARD with a reason, and there are at most 5.

Run `python tests/test_structure.py` to print the figures.
"""

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gate"

LAYERS: list[tuple[str, ...]] = [
    # foundation: errors, reason codes, files, sd_notify, config plumbing, the site
    ("gate", "gate.errors", "gate.reasons", "gate.files", "gate.notify", "gate.config"),
    # pure parts, each with its config section: parsers, trust, decoding, camera, rules,
    # signals, presentation, privacy and identity, the check-in hand-off
    (
        "gate.credentials",
        "gate.trust",
        "gate.decode",
        "gate.camera",
        "gate.decision",
        "gate.checkin",
        "gate.policy",
        "gate.passages",
        "gate.presentation",
        "gate.signals",
        "gate.faults",
        "gate.privacy",
        "gate.identity",
        "gate.outbox.config",
        "gate.commands.config",
    ),
    # the root config aggregate, above every section it aggregates
    ("gate.app_config",),
    # services built from the config: judge, remote lists, pipeline, outbox, commands
    (
        "gate.judge",
        "gate.config_edit",
        "gate.remote_lists",
        "gate.pipeline",
        "gate.control",
        "gate.outbox",
        "gate.commands",
    ),
    # the composition: the door side, the app, the process
    ("gate.door", "gate.app", "gate.daemon"),
    # tools on top: the command line and the self-test
    ("gate.cli", "gate.selftest"),
]

UPWARD: dict[tuple[str, str], str] = {}
"""(importer, imported) -> why this import runs from a lower layer to a higher one."""

DEFERRED: dict[tuple[str, str], str] = {
    ("gate.camera.source", "gate.camera.picam"): "picamera2 exists only on a Pi",
    **dict.fromkeys(
        [
            ("gate.credentials", "gate.credentials.dcc"),
            ("gate.credentials", "gate.credentials.vds_nc"),
            ("gate.credentials", "gate.credentials.gate_pass"),
            ("gate.credentials", "gate.trust.store"),
        ],
        "the signed parsers and cryptography (most of what the full config takes beyond the "
        "demo) only for a parser that reads signed kinds",
    ),
    ("gate.judge", "gate.trust.store"): "cryptography only for a gate that verifies signatures",
    ("gate.app", "gate.commands.service"): "cryptography only once remote commands can be "
    "used: an operations key configured, or a first command to answer",
    ("gate.outbox.service", "gate.outbox.publisher"): "paho once the door runs, not on the "
    "way to READY",
}
"""(importer, imported) -> why this import is made inside a function."""


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    late: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def _targets(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The gate modules an import statement loads (a `from package import submodule` names
    the submodule)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names if alias.name in MODULES)
        return
    if node.level or node.module is None or node.module not in MODULES:
        return
    submodules = [
        f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES
    ]
    yield from submodules
    if len(submodules) < len(node.names):
        yield node.module


def imports() -> list[Import]:
    found: list[Import] = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                late = _inside_function(tree, node)
                found += [Import(name, t, node.lineno, late) for t in _targets(node) if t != name]
    return found


def _inside_function(tree: ast.Module, target: ast.AST) -> bool:
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(child is target for child in ast.walk(node))
        for node in ast.walk(tree)
    )


def layer(module: str) -> int:
    """The layer of the longest prefix that names the module or a package above it."""
    best, rank = -1, -1
    for index, members in enumerate(LAYERS):
        for member in members:
            if (module == member or module.startswith(member + ".")) and len(member) > best:
                best, rank = len(member), index
    assert rank >= 0, f"{module} is in no layer"
    return rank


def cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def upward(found: list[Import]) -> set[tuple[str, str]]:
    return {(i.importer, i.imported) for i in found if layer(i.imported) > layer(i.importer)}


def test_no_import_cycles():
    assert cycles({(i.importer, i.imported) for i in imports()}) == []


def test_late_imports_are_only_the_deferred_ones_and_none_hides_a_cycle():
    found = imports()
    late = {(i.importer, i.imported) for i in found if i.late}
    assert late == set(DEFERRED), "late imports not listed (or listed but gone)"
    assert cycles({(i.importer, i.imported) for i in found}) == []  # late ones included


def test_upward_imports_are_listed_with_a_reason_and_few():
    assert upward(imports()) == set(UPWARD)
    assert len(UPWARD) <= 5


def test_every_module_is_in_a_layer():
    assert all(layer(module) >= 0 for module in MODULES)


if __name__ == "__main__":
    found = imports()
    edges = {(i.importer, i.imported) for i in found}
    print(f"modules {len(MODULES)}, imports between them {len(edges)}")
    print(f"cycles {len(cycles(edges))}")
    late = sorted({(i.importer, i.imported) for i in found if i.late})
    print(f"late imports {len(late)}: {late}")
    print(f"upward imports {len(upward(found))}: {sorted(upward(found))}")
