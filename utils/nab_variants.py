"""The 31 admissible ``SpikeLevelParams`` overrides of docs/accuracy.md ("Vectorised
default detector"), over which the team's selection CV (60.1 / 45.6 / 65.6) was made;
the research prototypes (``artime_proto.py``, ``cpd_experiments.py``) offer them to
their own selection CV beside their variants.  ``{}`` is the shipped default (version 3
then; on today's defaults, version 9, ``{"level_recent": 8}`` is the same variant)."""

SELECTION_VARIANTS: list[dict] = [
    {},
    {"season_slots": 0, "recur_slots": 0, "floor": 3.0, "burn_in": 300},
    {"recur_slots": 0, "floor": 3.0, "burn_in": 300},
    {"recur_slots": 0, "burn_in": 300},
    {"burn_in": 300},
    {"burn_in": 200},
    {"half_life": 700.0},
    {"half_life": 1500.0},
    {"floor": 3.0},
    {"floor": 3.5},
    {"floor": 4.5},
    {"recur_slots": 24},
    {"recur_reach": 0},
    {"recur_reach": 2},
    {"recur_days": 1},
    {"recur_days": 3},
    {"recur_slots": 0},
    {"repeat_window": 30},
    {"repeat_window": 90},
    {"season_level_gate": False},
    {"scale_blocks": 24},
    {"scale_blocks": 40},
    {"season_slots": 48},
    {"season_days": 2},
    {"season_slots": 0},
    {"local_k": 3},
    {"level_recent": 8},
    {"level_past": 90},
    {"level_past": 160},
    {"err_alpha": 1.0 / 64},
    {"err_alpha": 1.0 / 1024},
]
