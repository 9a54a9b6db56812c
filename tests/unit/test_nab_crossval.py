"""Leave-one-category-out and nested cross-validation of NAB detector choices.

The property that matters is that no choice sees the category it is scored on:
changing a held-out category's scores must never change that fold's variant or
threshold.  The nested CV is also compared with a slow, plainly written twin.
"""

from __future__ import annotations

import numpy as np
import pytest

from skyline.analysis.nab import crossval, scoring

PROFILES = list(scoring.PROFILES.values())
N = 100  # rows per file; probation = 15
WINDOW = (40.0 * 60, 49.0 * 60)  # rows 40..49


def case(category: str, file: str, scores) -> scoring.FileCase:
    ts = np.arange(N) * 60.0
    return scoring.prepare(f"{category}/{file}.csv", ts, np.asarray(scores, dtype=float), [WINDOW])


def spikes(rows: list[int], level: float = 1.0) -> np.ndarray:
    s = np.zeros(N)
    s[rows] = level
    return s


def corpus(per_category: dict[str, list[int]]) -> list[scoring.FileCase]:
    """One file per category, detecting at the given rows."""
    return [case(cat, "f", spikes(rows)) for cat, rows in per_category.items()]


def random_variants(rng: np.random.Generator, n_variants: int, cats: int, files: int) -> dict:
    out = {}
    for v in range(n_variants):
        cases = []
        for c in range(cats):
            for f in range(files):
                s = rng.random(N) ** 3
                s[40 + rng.integers(0, 10)] += rng.random()  # something inside the window
                cases.append(case(f"cat{c}", f"f{f}", np.minimum(s, 1.0)))
        out[f"v{v}"] = cases
    return out


def test_the_held_out_category_never_chooses_its_own_variant():
    good = ["A", "B", "C"]
    # "leaky" is perfect on C only; "plain" detects every window late
    leaky = corpus({"A": [20], "B": [20], "C": [40]})
    plain = corpus({"A": [45], "B": [45], "C": [45]})
    variants = {"plain": plain, "leaky": leaky}
    std = scoring.PROFILES["standard"]
    cv = crossval.leave_one_category_out(variants, std)
    chosen = {f["held_out"]: f["variant"] for f in cv["folds"]}
    assert sorted(chosen) == good
    assert chosen["C"] == "plain"  # leaky is best on C, but C may not vote
    expected = sum(crossval.raw_at([c], 0.5, std) for c in plain)
    assert cv["raw"] == pytest.approx(expected)
    # in-sample, plain wins too (two false positives and two misses cost leaky more)
    assert crossval.in_sample(variants, std)["variant"] == "plain"


@pytest.mark.parametrize("fold_fn", [crossval.leave_one_category_out, crossval.nested])
def test_changing_the_held_out_category_changes_no_choice_of_its_fold(fold_fn):
    rng = np.random.default_rng(7)
    variants = random_variants(rng, 3, 3, 2)
    std = scoring.PROFILES["standard"]
    before = fold_fn(variants, std)["folds"]
    changed = {
        k: [
            case("cat1", c.name.split("/")[1][:-4], rng.random(N))
            if c.name.startswith("cat1/")
            else c
            for c in v
        ]  # fmt: skip
        for k, v in variants.items()
    }
    after = fold_fn(changed, std)["folds"]
    b, a = before[1], after[1]
    assert a["held_out"] == b["held_out"] == "cat1"
    assert (a["variant"], a["threshold"]) == (b["variant"], b["threshold"])
    assert a["held_out_raw"] != b["held_out_raw"]  # its scores did change


def slow_nested(variants: dict, profile: dict) -> tuple[float, list[str]]:
    """Nested CV written out loop by loop."""
    names = list(variants)
    cats = sorted({c.name.split("/")[0] for c in variants[names[0]]})
    total, picks = 0.0, []
    for held in cats:
        inner_scores = []
        for name in names:
            train = [c for c in variants[name] if not c.name.startswith(held + "/")]
            inner = 0.0
            for inner_held in cats:
                if inner_held == held:
                    continue
                fit = [c for c in train if not c.name.startswith(inner_held + "/")]
                test = [c for c in train if c.name.startswith(inner_held + "/")]
                threshold, _ = scoring.optimise_threshold(fit, profile)
                inner += sum(scoring.score_file(c, threshold, profile)["raw"] for c in test)
            inner_scores.append(inner)
        best = 0
        for i in range(1, len(names)):
            if inner_scores[i] > inner_scores[best] + 1e-12:
                best = i
        name = names[best]
        picks.append(name)
        train = [c for c in variants[name] if not c.name.startswith(held + "/")]
        threshold, _ = scoring.optimise_threshold(train, profile)
        total += sum(scoring.score_file(c, threshold, profile)["raw"]
                     for c in variants[name] if c.name.startswith(held + "/"))  # fmt: skip
    windows = sum(c.n_windows for c in variants[names[0]])
    return scoring.normalise(total, windows, profile), picks


@pytest.mark.parametrize("seed", range(6))
def test_nested_matches_its_slow_twin(seed):
    rng = np.random.default_rng(seed)
    variants = random_variants(rng, int(rng.integers(1, 5)), int(rng.integers(3, 5)), 2)
    for profile in PROFILES:
        got = crossval.nested(variants, profile)
        score, picks = slow_nested(variants, profile)
        assert got["score"] == pytest.approx(score, abs=1e-9)
        assert [f["variant"] for f in got["folds"]] == picks


def test_nested_and_in_sample_selection_can_disagree():
    """A variant that is best on the training categories pooled, but only by
    fitting one threshold to two categories that want different ones, loses the
    inner cross-validation to a steadier one."""
    std = scoring.PROFILES["standard"]
    # "fitted": its detections score 0.9 in A and 0.5 in B, with 0.7 false
    # positives in A and 0.3 ones in B: any single threshold fails one category
    fitted = [
        case("A", "f", spikes([40], 0.9) + spikes([20], 0.7)),
        case("B", "f", spikes([40], 0.5) + spikes([20], 0.3)),
        case("C", "f", spikes([40], 0.9) + spikes([20], 0.7)),
        case("H", "f", spikes([45], 1.0)),
    ]
    steady = [
        case("A", "f", spikes([46], 0.8)),
        case("B", "f", spikes([46], 0.8)),
        case("C", "f", spikes([46], 0.8)),
        case("H", "f", spikes([46], 0.8)),
    ]
    variants = {"fitted": fitted, "steady": steady}
    loco = {
        f["held_out"]: f["variant"] for f in crossval.leave_one_category_out(variants, std)["folds"]
    }
    nest = {f["held_out"]: f["variant"] for f in crossval.nested(variants, std)["folds"]}
    assert loco["H"] == "fitted"
    assert nest["H"] == "steady"


def test_fixed_scores_one_variant_at_a_given_threshold():
    cases = corpus({"A": [40], "B": [20]})
    std = scoring.PROFILES["standard"]
    got = crossval.fixed(cases, 0.5, std)
    assert got["raw"] == pytest.approx(crossval.raw_at(cases, 0.5, std))
    assert got["score"] == pytest.approx(scoring.normalise(got["raw"], 2, std))
    assert crossval.fixed(cases, 1.1, std)["score"] == pytest.approx(0.0)  # nothing detected
