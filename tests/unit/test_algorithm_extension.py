"""An algorithm added as one file, with no other edit, works end to end.

The fixture ``tests/fixtures/extensions/algorithms/range_breakout.py`` (the example of
docs/extending.md) is put on the algorithm package's path and the registry reloaded:
the settings accept it, the ensemble (per series and in the analyzer's batch pass)
runs it and counts its vote, and the generated settings docs list it.  Removing the
folder again forgets it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import skyline.analysis.algorithms.classic as classic
from skyline.analysis.algorithms import (
    ALGORITHMS,
    CLASSIC_ORDER,
    EnsembleOptions,
    run_ensemble,
)
from skyline.analysis.analyzer.analysis import analyse
from skyline.registry import DuplicateExtension, Registry
from skyline.settings import Settings, SettingsError, load_settings
from skyline.settings import doc as settings_doc
from skyline.store.timeseries import Series

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "extensions" / "algorithms"
NOW = 1_700_000_000


def noisy(seed: int, spike: float = 0.0, n: int = 300) -> Series:
    v = 10 + np.random.default_rng(seed).standard_normal(n)
    v[-1] += spike
    return Series(NOW - 60 * np.arange(n - 1, -1, -1, dtype=np.int64), v)


@pytest.fixture
def added(monkeypatch):
    """The fixture folder on the algorithm package's path, the registry reloaded; on
    teardown the folder is removed and the registry reloaded again."""
    monkeypatch.setattr(classic, "__path__", [*classic.__path__, str(FIXTURES)])
    ALGORITHMS.reload()
    yield ALGORITHMS.get("range_breakout")
    monkeypatch.undo()
    ALGORITHMS.reload()


def test_not_known_without_the_file():
    assert "range_breakout" not in ALGORITHMS
    with pytest.raises(SettingsError, match="unknown algorithm 'range_breakout'"):
        load_settings(env={"SKYLINE__ANALYZER__ALGORITHMS": '["range_breakout"]',
                           "SKYLINE__ANALYZER__CONSENSUS": "1"})  # fmt: skip


def test_settings_accept_it_and_the_default_ensemble_is_unchanged(added):
    settings = load_settings(env={
        "SKYLINE__ANALYZER__ALGORITHMS": '["grubbs", "range_breakout"]',
        "SKYLINE__ANALYZER__CONSENSUS": "2",
        "SKYLINE__MIRAGE__ALGORITHMS": '["range_breakout"]',
        "SKYLINE__MIRAGE__CONSENSUS": "1",
    })  # fmt: skip
    assert settings.analyzer.algorithms == ["grubbs", "range_breakout"]
    assert settings.mirage.algorithms == ["range_breakout"]
    # registered without a position: not in the default ensemble
    assert Settings().analyzer.algorithms == list(CLASSIC_ORDER)


def test_the_ensemble_runs_it_and_counts_its_vote(added, monkeypatch):
    settings = load_settings(env={"SKYLINE__ANALYZER__ALGORITHMS": '["range_breakout"]',
                                  "SKYLINE__ANALYZER__CONSENSUS": "1"})  # fmt: skip
    options = EnsembleOptions.from_settings(settings.analyzer)
    spiked = run_ensemble(noisy(1, spike=50.0), now=NOW, options=options)
    calm = run_ensemble(noisy(1), now=NOW, options=options)
    assert spiked.anomalous is True and spiked.triggered == ("range_breakout",)
    assert spiked.scores["range_breakout"] > 1.0
    assert calm.anomalous is False and calm.votes == {"range_breakout": False}
    assert added(noisy(1, spike=50.0)).anomalous is True  # the per-series function
    # its vote counts towards consensus: 2 of these 2 agree; with it voting False, not
    both = EnsembleOptions.of(options, algorithms=("stddev_from_average", "range_breakout"),
                              consensus=2)  # fmt: skip
    assert run_ensemble(noisy(1, spike=50.0), now=NOW, options=both).anomalous is True
    monkeypatch.setattr(added, "kernel", lambda b, ctx: (np.zeros(b.m, np.int8), np.zeros(b.m)))
    outvoted = run_ensemble(noisy(1, spike=50.0), now=NOW, options=both)
    assert outvoted.anomalous is False and outvoted.votes["stddev_from_average"] is True


def test_the_analyzer_pass_runs_it_in_batch(added):
    """Ten equal-length series: the analyzer's batch path (run_ensemble_batch)."""
    settings = load_settings(env={"SKYLINE__ANALYZER__ALGORITHMS":
                                  '["stddev_from_average", "range_breakout"]',
                                  "SKYLINE__ANALYZER__CONSENSUS": "2"})  # fmt: skip
    options = EnsembleOptions.from_settings(settings.analyzer)
    series = {f"m{i}": noisy(i, spike=60.0 if i == 3 else 0.0) for i in range(10)}
    verdicts, _ = analyse(series, NOW, options, detect_counters=False)
    flagged = {name for name, v in verdicts.items() if v.anomalous}
    assert flagged == {"m3"}
    assert verdicts["m3"].triggered == ("stddev_from_average", "range_breakout")
    for name, v in verdicts.items():  # the batch gives the per-series verdicts
        assert v.votes == run_ensemble(series[name], now=NOW, options=options).votes


def test_generated_settings_docs_list_it(added):
    template = settings_doc.render_template()
    markdown = settings_doc.render_markdown()
    for text in (template, markdown):
        line = next(ln for ln in text.splitlines() if "The ensemble, in the order run" in ln)
        assert "range_breakout" in line and "grubbs" in line


def test_removing_the_folder_forgets_it(monkeypatch):
    monkeypatch.setattr(classic, "__path__", [*classic.__path__, str(FIXTURES)])
    ALGORITHMS.reload()
    assert "range_breakout" in ALGORITHMS
    monkeypatch.undo()
    ALGORITHMS.reload()
    assert "range_breakout" not in ALGORITHMS
    assert ALGORITHMS.defaults() == list(CLASSIC_ORDER)
    assert "range_breakout" not in settings_doc.render_template()


def test_registry_by_package_and_duplicates():
    assert Registry.of("skyline.analysis.algorithms.classic") is ALGORITHMS
    with pytest.raises(DuplicateExtension, match="grubbs"):
        ALGORITHMS.add("grubbs", ALGORITHMS.get("histogram_bins"))
    assert ALGORITHMS.get("grubbs").name == "grubbs"


def test_the_extending_doc_shows_the_fixture_file_as_it_is():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "extending.md").read_text()
    section = doc.split("## Adding an algorithm", 1)[1].split("\n## ", 1)[0]
    shown = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert shown == (FIXTURES / "range_breakout.py").read_text()


def test_mirage_does_not_import_the_analyzer():
    """Mirage takes the counter rule from the series preparation, not from the analyzer."""
    code = ("import sys, skyline.analysis.mirage.agent; "
            "print(sorted(m for m in sys.modules if m.startswith('skyline.analysis.analyzer')))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
