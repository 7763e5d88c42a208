"""Imports point one way: cli -> service -> projections -> audit -> log -> migrate -> backends -> core.

A module may import modules of its own layer or of layers below it, never above. Imports
under ``if TYPE_CHECKING:`` are annotations only and not counted; an import inside a function
is counted unless it is one of the documented delegators listed in ``LAZY_UPWARD`` (the
store's checkpoint and proof methods, which the Python API keeps, call into eventstore.audit).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LAYERS: list[tuple[str, list[str]]] = [
    (
        "core",
        [
            "eventstore.errors",
            "eventstore.records",
            "eventstore.hashing",
            "eventstore.codec",
            "eventstore.clock",
            "eventstore.files",
        ],
    ),
    ("backends", ["eventstore.backends"]),
    ("migrate", ["eventstore.migrate"]),
    (
        "log",
        [
            "eventstore",
            "eventstore.store",
            "eventstore.verify",
            "eventstore.mapping",
            "eventstore.commit",
            "eventstore.catalogue",
            "eventstore.upcasting",
            "eventstore.shredding",
            "eventstore.testing",
        ],
    ),
    (
        "audit",
        [
            "eventstore.audit",
            "eventstore.merkle",
            "eventstore.notes",
            "eventstore.proofs",
            "eventstore.auditor",
            "eventstore.transparency",
            "eventstore.backup",  # checks a backup against checkpoints: above the transparency log
        ],
    ),
    ("projections", ["projections"]),
    ("service", ["eventstore.service", "eventstore.client"]),
    ("cli", ["eventstore.cli", "eventstore.demo"]),
]

LAZY_UPWARD = {
    ("eventstore.store", "eventstore.audit.log"),
    ("eventstore.store", "eventstore.audit.merkle"),
    ("eventstore", "eventstore.audit"),
}
"""(importer, imported) pairs allowed to point up, inside a function only (documented delegators)."""


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    return None if best is None else best[0]


def _module_name(path: Path) -> tuple[str, str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel / "__init__.py").exists()


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every runtime import of ``path``."""
    module, package = _module_name(path)
    tree = ast.parse(path.read_text())
    out: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child, in_function)
            return
        if isinstance(node, ast.Import):
            out.extend((a.name, node.lineno, in_function) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append((sub if _is_module(sub) else base, node.lineno, in_function))
        for child in ast.iter_child_nodes(node):
            visit(child, in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(tree, False)
    return out


def test_imports_point_down() -> None:
    wrong = []
    for path in sorted([*ROOT.glob("eventstore/**/*.py"), *ROOT.glob("projections/**/*.py")]):
        module, _ = _module_name(path)
        mine = layer_of(module)
        assert mine is not None, f"{module} is in no layer: add it to LAYERS"
        for target, line, in_function in imports(path):
            theirs = layer_of(target)
            if theirs is None or theirs <= mine:
                continue
            if in_function and (module, target) in LAZY_UPWARD:
                continue
            wrong.append(
                f"{path.relative_to(ROOT)}:{line}: {module} ({LAYERS[mine][0]}) imports {target} ({LAYERS[theirs][0]})"
            )
    assert not wrong, "imports that point up:\n" + "\n".join(wrong)


def test_the_checker_sees_an_upward_import() -> None:
    """The check itself: a core module importing the transparency log, even inside a function, is found."""
    probe = ROOT / "eventstore" / f"_layer_probe_{os.getpid()}.py"
    probe.write_text(
        "import typing\n\nif typing.TYPE_CHECKING:\n    from .cli import main\n\n\n"
        "def late():\n    from .audit import log\n"
    )
    try:
        found = imports(probe)
    finally:
        probe.unlink()
    assert found == [("typing", 1, False), ("eventstore.audit.log", 8, True)]  # TYPE_CHECKING is not counted
    assert layer_of("eventstore.audit.log") > layer_of("eventstore." + probe.stem)  # type: ignore[operator]
