"""Import direction: each package imports only what its ``__init__`` docstring allows.

The rule is read from the docstrings themselves (their ``May import:`` and ``Inside:``
lines), so the documentation and this test cannot disagree.  ``LAYERS`` only checks
the docstrings: none may allow a package of its own or a higher layer.  Every
``import`` statement counts, including those inside functions and ``TYPE_CHECKING``
blocks; loading extension modules by name through ``skyline.registry`` is not an edge.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import skyline

ROOT = Path(skyline.__file__).parent

# Lowest first.  The root package (its version), the registry and the numba wrapper
# (``skyline.compiled``) may be imported by all.
LAYERS: list[tuple[str, ...]] = [
    ("skyline", "skyline.registry", "skyline.compiled"),
    ("skyline.settings",),
    ("skyline.store", "skyline.db"),
    ("skyline.runtime",),
    ("skyline.events",),
    ("skyline.ingest", "skyline.analysis", "skyline.alerting"),
    ("skyline.webapp",),
    ("skyline.cli",),
]
ALWAYS = frozenset(LAYERS[0])
PACKAGES = [p for layer in LAYERS[1:] for p in layer]


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported module
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def edges() -> list[Edge]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        source = module_name(path)
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against the importing package
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*up, base] if base else up)
                targets = [base]
            else:
                continue
            found += [Edge(source, t, node.lineno) for t in targets if is_skyline(t)]
    return found


def is_skyline(name: str) -> bool:
    return name == "skyline" or name.startswith("skyline.")


def top(module: str) -> str:
    """The top-level package of a skyline module (``skyline`` for the root itself)."""
    parts = module.split(".")
    return ".".join(parts[:2])


def docstring(package: str) -> str:
    init = ROOT.parent.joinpath(*package.split("."), "__init__.py")
    doc = ast.get_docstring(ast.parse(init.read_text()))
    assert doc, f"{package} has no docstring"
    return doc


def paragraph(doc: str, label: str) -> str | None:
    """The text of the paragraph that starts with ``label``, on one line."""
    for para in doc.split("\n\n"):
        if para.startswith(label):
            return " ".join(para[len(label) :].split())
    return None


def names(text: str) -> set[str]:
    return set(re.findall(r"``([\w.]+)``", text))


def may_import(package: str) -> set[str]:
    """The packages ``package`` may import, from its ``May import:`` line."""
    text = paragraph(docstring(package), "May import:")
    assert text is not None, f"{package}'s docstring has no 'May import:' line"
    if text.startswith("anything in ``skyline``"):
        return set(PACKAGES) - names(text.partition("except")[2]) - {package}
    listed = names(text) - ALWAYS  # "nothing else from ``skyline``" lists none
    unknown = listed - set(PACKAGES)
    assert not unknown, f"{package}: 'May import:' names unknown packages {unknown}"
    return listed


def shared_inside(package: str) -> set[str]:
    """The folders of ``package`` every sibling folder may import (its ``Inside:`` line)."""
    text = paragraph(docstring(package), "Inside:")
    return {n for n in names(text or "") if n.startswith(package + ".")}


def folder(module: str, package: str) -> str | None:
    """The sub-package of ``package`` that holds ``module``; None for a module directly
    in ``package`` (those are shared by its folders)."""
    rest = module[len(package) + 1 :].split(".")
    if len(rest) < 1 or not rest[0]:
        return None
    name = f"{package}.{rest[0]}"
    return name if ROOT.parent.joinpath(*name.split(".")).is_dir() else None


def layer(package: str) -> int:
    return next(i for i, group in enumerate(LAYERS) if package in group)


def test_every_package_is_in_a_layer():
    on_disk = {f"skyline.{p.name}" for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert on_disk == set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_docstring_allows_only_lower_layers(package):
    higher = {p for p in may_import(package) if layer(p) >= layer(package)}
    assert not higher, f"{package}'s docstring allows its own or a higher layer: {higher}"


def against_layers(found: list[Edge]) -> list[str]:
    allowed = {p: may_import(p) | ALWAYS | {p} for p in PACKAGES}
    return [
        str(e)
        for e in found
        if top(e.source) in allowed and top(e.target) not in allowed[top(e.source)]
    ]


def sideways(found: list[Edge]) -> list[str]:
    bad = []
    for e in found:
        package = top(e.source)
        if package not in PACKAGES or top(e.target) != package:
            continue
        src, dst = folder(e.source, package), folder(e.target, package)
        if src is not None and dst not in (None, src) and dst not in shared_inside(package):
            bad.append(str(e))
    return bad


def test_imports_follow_the_docstrings():
    bad = against_layers(edges())
    assert not bad, "imports against the 'May import:' lines:\n" + "\n".join(bad)


def test_lowest_layer_imports_nothing_from_skyline():
    bad = [str(e) for e in edges() if e.source in ALWAYS and e.target != e.source]
    assert not bad


def test_folders_do_not_import_their_siblings():
    bad = sideways(edges())
    assert not bad, "sideways imports between folders of one package:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("check", "edge"),
    [
        (against_layers, Edge("skyline.store.keys", "skyline.events.rules", 1)),
        (against_layers, Edge("skyline.analysis.mirage.agent", "skyline.alerting.dedupe", 1)),
        (against_layers, Edge("skyline.webapp.app", "skyline.cli.main", 1)),
        (sideways, Edge("skyline.analysis.mirage.agent", "skyline.analysis.analyzer.detect", 1)),
        (sideways, Edge("skyline.ingest.flux.writer", "skyline.ingest.horizon.intake", 1)),
    ],
)
def test_the_checks_catch_a_violation(check, edge):
    assert check([edge]) == [str(edge)]


def test_the_checks_pass_allowed_edges():
    ok = [
        Edge("skyline.analysis.mirage.agent", "skyline.analysis.algorithms", 1),
        Edge("skyline.ingest.flux.writer", "skyline.ingest", 1),
        Edge("skyline.alerting.agent", "skyline.events.boundary_rules", 1),
        Edge("skyline.cli.main", "skyline.webapp.app", 1),
    ]
    assert against_layers(ok) == [] and sideways(ok) == []


def test_edges_include_imports_inside_functions():
    found = [e for e in edges() if e.source == "skyline.analysis.ionosphere.learn"]
    assert "skyline.store.rollups" in {e.target for e in found}
