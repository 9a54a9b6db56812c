"""Leave-one-category-out cross-validation of detector choices on a NAB corpus.

Every choice is made without the category it is then scored on: for each
category C, the variant (a parameter set, a feature switch, ...) and the
threshold are the ones with the best raw score on the *other* categories; that
variant's scores on C's files are then scored at that threshold.  ``nested``
chooses the variant differently: by its own leave-one-category-out score on the
other categories (an inner cross-validation), not by its in-sample score there.
The held-out raw scores of all categories add up to one corpus raw score,
normalised as NAB does.  ``in_sample`` is the usual figure: the best variant on the whole corpus,
at its own optimised threshold.  ``fixed`` scores one variant at a given
threshold (the analyzer's configured one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from skyline.analysis.nab.scoring import (
    PROFILES,
    FileCase,
    normalise,
    optimise_threshold,
    score_file,
)


def category(case: FileCase) -> str:
    return case.name.split("/", 1)[0]


def raw_at(cases: list[FileCase], threshold: float, profile: dict[str, float]) -> float:
    return sum(score_file(c, threshold, profile)["raw"] for c in cases)


def in_sample(variants: Mapping[str, list[FileCase]], profile: dict[str, float]) -> dict:
    best: dict | None = None
    for name, cases in variants.items():
        threshold, raw = optimise_threshold(cases, profile)
        windows = sum(c.n_windows for c in cases)
        row = {"variant": name, "threshold": threshold, "raw": raw,
               "score": normalise(raw, windows, profile)}  # fmt: skip
        if best is None or raw > best["raw"] + 1e-12:
            best = row
    assert best is not None
    return best


def leave_one_category_out(
    variants: Mapping[str, list[FileCase]],
    profile: dict[str, float],
    choose: Callable[[dict[str, list[FileCase]], dict[str, float]], dict] | None = None,
) -> dict:
    """Cross-validated score (see the module docstring) and each fold's choice.

    ``choose`` picks a fold's variant and threshold from the other categories'
    cases (default ``in_sample``; ``nested`` passes an inner cross-validation)."""
    choose = choose or in_sample
    first = next(iter(variants.values()))
    cats = sorted({category(c) for c in first})
    folds, total_raw = [], 0.0
    for held in cats:
        train = {k: [c for c in v if category(c) != held] for k, v in variants.items()}
        choice = choose(train, profile)
        test = [c for c in variants[choice["variant"]] if category(c) == held]
        raw = raw_at(test, choice["threshold"], profile)
        total_raw += raw
        folds.append({"held_out": held, **{k: v for k, v in choice.items() if k in _FOLD},
                      "held_out_raw": round(raw, 4)})  # fmt: skip
    windows = sum(c.n_windows for c in first)
    return {"score": normalise(total_raw, windows, profile), "raw": total_raw, "folds": folds}


_FOLD = ("variant", "threshold", "inner_cv_raw")  # what a fold reports of its choice


def nested(variants: Mapping[str, list[FileCase]], profile: dict[str, float]) -> dict:
    """Nested cross-validation: for each held-out category C, the variant with the
    best leave-one-category-out raw score on the other categories (each inner fold
    chooses its own threshold), at the threshold optimised on all of them, scored
    on C.  It costs one inner cross-validation per variant and fold."""
    return leave_one_category_out(variants, profile, _by_inner_cv)


def _by_inner_cv(train: dict[str, list[FileCase]], profile: dict[str, float]) -> dict:
    best: tuple[str, float] | None = None
    for name, cases in train.items():
        inner = leave_one_category_out({name: cases}, profile)["raw"]
        if best is None or inner > best[1] + 1e-12:
            best = (name, inner)
    assert best is not None
    threshold, _ = optimise_threshold(train[best[0]], profile)
    return {"variant": best[0], "threshold": threshold, "inner_cv_raw": round(best[1], 4)}


def fixed(cases: list[FileCase], threshold: float, profile: dict[str, float]) -> dict:
    raw = raw_at(cases, threshold, profile)
    windows = sum(c.n_windows for c in cases)
    return {"threshold": threshold, "raw": raw, "score": normalise(raw, windows, profile)}


def report(
    variants: Mapping[str, list[FileCase]],
    shipped: str | None = None,
    threshold: float | None = None,
    profiles: Mapping[str, dict[str, float]] | None = None,
) -> dict:
    """In-sample and cross-validated scores per profile; with ``shipped`` and
    ``threshold``, also that variant's in-sample score at the fixed threshold and
    its cross-validated score with the variant fixed (threshold still chosen
    without the held-out category)."""
    out: dict = {}
    for pname, profile in (profiles or PROFILES).items():
        row = {"in_sample": in_sample(variants, profile),
               "cross_validated": leave_one_category_out(variants, profile)}  # fmt: skip
        if shipped is not None:
            only = {shipped: variants[shipped]}
            row["shipped_in_sample"] = in_sample(only, profile)
            row["shipped_cross_validated"] = leave_one_category_out(only, profile)
            if threshold is not None:
                row["shipped_fixed_threshold"] = fixed(variants[shipped], threshold, profile)
        out[pname] = row
    return out
