"""The docs, the README and the code's docstrings refer only to files a clone has.

A reader of a clone of the repository has no ``../shared/`` folder (the development
machine's notes) and no ``/work`` tree: such a reference is a dead end.  Relative
Markdown links must name a file or folder of the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(r"(?:\.\./)+shared/|(?<![\w.])shared/(?:nab|reference|DESIGN)|/work/")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def documents() -> list[Path]:
    docs = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
    return docs + sorted((ROOT / "skyline").rglob("*.py"))


def test_nothing_refers_to_files_outside_the_repository():
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()[:120]}"
        for path in documents()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "references to files a clone does not have:\n" + "\n".join(found)


def test_relative_markdown_links_name_files_of_the_repository():
    broken = []
    for path in [p for p in documents() if p.suffix == ".md"]:
        for target in LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            if not (path.parent / target).exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_the_check_sees_a_reference_outside():
    assert OUTSIDE.search("see `../shared/nab/README.md`")
    assert OUTSIDE.search("Skyline's mirage, `/work/shared/reference/skyline.md` §5")
    assert not OUTSIDE.search("skyline/store/shared_memory.py")
