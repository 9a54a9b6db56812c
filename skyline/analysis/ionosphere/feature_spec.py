"""Which tsfresh feature calculators Skyline runs, with which parameters, and why.

Chosen to be discriminative and fast.  Left out because they dominate tsfresh's
cost on a 1,440-point series (measured, see docs/ionosphere.md): approximate_entropy
and sample_entropy (~0.9 s together), change_quantiles (~50 ms), number_cwt_peaks
(~30 ms), augmented_dickey_fuller (~22 ms), agg_linear_trend (~10 ms),
lempel_ziv_complexity, permutation_entropy, friedrich_coefficients,
max_langevin_fixed_point, fourier_entropy, benford_correlation, cwt_coefficients
and the pandas-only ``*_timewise`` calculators.

Each group is ``(calculator name, parameter sets or None, why)``.  Feature names
follow tsfresh's convention ``value__<calculator>[__<k>_<v>...]``; their integer ids
live in ``skyline.analysis.ionosphere.feature_ids`` and never change.
"""

from __future__ import annotations

from typing import Any

Params = list[dict[str, Any]] | None

SIMPLE: tuple[tuple[str, str], ...] = (
    ("abs_energy", "sum of squares: level and amplitude together"),
    ("absolute_maximum", "largest magnitude"),
    ("absolute_sum_of_changes", "total movement"),
    ("count_above_mean", "asymmetry of the distribution in time"),
    ("count_below_mean", "asymmetry of the distribution in time"),
    ("first_location_of_maximum", "where the peak is"),
    ("first_location_of_minimum", "where the trough is"),
    ("has_duplicate", "discrete vs continuous values"),
    ("has_duplicate_max", "plateaus at the top"),
    ("has_duplicate_min", "plateaus at the bottom"),
    ("kurtosis", "tailedness: spikes"),
    ("last_location_of_maximum", "where the peak is"),
    ("last_location_of_minimum", "where the trough is"),
    ("length", "number of points (window coverage)"),
    ("longest_strike_above_mean", "sustained highs"),
    ("longest_strike_below_mean", "sustained lows"),
    ("maximum", "level"),
    ("mean", "level"),
    ("mean_abs_change", "noise / roughness"),
    ("mean_change", "drift"),
    ("mean_second_derivative_central", "curvature"),
    ("median", "robust level"),
    ("minimum", "level"),
    ("percentage_of_reoccurring_datapoints_to_all_datapoints", "discreteness"),
    ("percentage_of_reoccurring_values_to_all_values", "discreteness"),
    ("ratio_value_number_to_time_series_length", "discreteness"),
    ("root_mean_square", "level and amplitude"),
    ("skewness", "asymmetry: one-sided spikes"),
    ("standard_deviation", "spread"),
    ("sum_of_reoccurring_data_points", "discreteness weighted by level"),
    ("sum_of_reoccurring_values", "discreteness weighted by level"),
    ("sum_values", "level times length"),
    ("variance", "spread"),
    ("variance_larger_than_standard_deviation", "scale indicator"),
    ("variation_coefficient", "relative spread"),
)

PARAMETERISED: tuple[tuple[str, Params, str], ...] = (
    (
        "quantile",
        [{"q": q} for q in (0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9)],
        "distribution shape",
    ),
    ("autocorrelation", [{"lag": lag} for lag in range(10)], "short-range periodicity"),
    ("partial_autocorrelation", [{"lag": lag} for lag in range(1, 6)], "AR structure"),
    (
        "large_standard_deviation",
        [{"r": round(0.05 * i, 2)} for i in range(1, 10)],
        "spread relative to range",
    ),
    ("number_peaks", [{"n": n} for n in (1, 3, 5, 10, 50)], "peaks at several scales"),
    ("binned_entropy", [{"max_bins": 10}], "how evenly values spread"),
    (
        "time_reversal_asymmetry_statistic",
        [{"lag": lag} for lag in (1, 2, 3)],
        "saw-tooth / ramp asymmetry",
    ),
    ("c3", [{"lag": lag} for lag in (1, 2, 3)], "non-linearity"),
    ("cid_ce", [{"normalize": True}, {"normalize": False}], "complexity"),
    ("ratio_beyond_r_sigma", [{"r": r} for r in (0.5, 1, 1.5, 2, 2.5, 3, 5)], "outlier share"),
    ("count_above", [{"t": 0}], "sign"),
    ("count_below", [{"t": 0}], "sign"),
    ("number_crossing_m", [{"m": m} for m in (-1, 0, 1)], "oscillation around levels"),
    ("mean_n_absolute_max", [{"number_of_maxima": 7}], "top of the range"),
    ("range_count", [{"min": -1, "max": 1}], "values near zero"),
    ("value_count", [{"value": v} for v in (-1, 0, 1)], "special values"),
    ("fft_coefficient", [{"coeff": c, "attr": "abs"} for c in range(10)], "spectrum"),
    (
        "fft_aggregated",
        [{"aggtype": a} for a in ("centroid", "variance", "skew", "kurtosis")],
        "spectrum shape",
    ),
    (
        "index_mass_quantile",
        [{"q": q} for q in (0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9)],
        "where the mass is in time",
    ),
    ("spkt_welch_density", [{"coeff": c} for c in (2, 5, 8)], "power spectrum"),
    ("ar_coefficient", [{"coeff": c, "k": 10} for c in range(5)], "autoregressive model"),
    (
        "linear_trend",
        [{"attr": a} for a in ("pvalue", "rvalue", "intercept", "slope", "stderr")],
        "trend",
    ),
    (
        "agg_autocorrelation",
        [{"f_agg": f, "maxlag": 40} for f in ("mean", "median", "var")],
        "longer-range periodicity",
    ),
    (
        "energy_ratio_by_chunks",
        [{"num_segments": 10, "segment_focus": i} for i in range(10)],
        "where the energy is in time",
    ),
    ("symmetry_looking", [{"r": round(0.05 * i, 2)} for i in range(1, 6)], "symmetry"),
)
