"""Settings of vista, the daemon that pulls metrics: one ``[[vista]]`` table per source.

The keys common to every source kind are declared here; what only one kind needs
(an SQL time zone, MLflow experiment names) goes in the source's ``options`` table
and is validated by the model that lives beside that kind's module
(``skyline/ingest/vista/sources/<kind>.py``) when vista or ``skyline config check``
builds the source.  Secrets never sit in the file: ``url`` may hold ``${ENV_VAR}``
references, expanded from the environment when the source is built, and
``password_env`` names a variable holding a password.  ``{var_dir}`` in ``url`` is
replaced by ``[skyline] var_dir`` when the settings load.

The embedded defaults hold one source, ``DEMO_SOURCE``: the table ``skyline demo``
fills (skyline/cli/demo_sql.py).  Any ``[[vista]]`` table in the file replaces it.
"""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from skyline.settings.base import Section, key

DEMO_DB_FILE = "demo-shop.sqlite"
DEMO_SOURCE: dict[str, Any] = {
    "name": "demo-orders",
    "kind": "sql",
    "url": "sqlite:///{var_dir}/" + DEMO_DB_FILE,
    "query": "SELECT ts, name, region, value FROM demo_orders WHERE ts > :start AND ts <= :end",
    "interval": 60.0,
    "namespace": "demo",
    "lookback": 300,
    "backfill_days": 1.0,
    "options": {"time_type": "epoch", "label_columns": ["region"], "missing_ok": True},
}


class VistaSource(Section):
    """One pulled source: what to ask, where, how often, and how to name the metrics."""

    name: str = key(
        ..., "Name of the source (letters, digits, _ and -): in logs, the Status page and "
        "skyline vista backfill NAME.", pattern=r"^[A-Za-z0-9_-]{1,64}$",
    )  # fmt: skip
    kind: str = key(
        ...,
        "Source kind: sql, prometheus, victoriametrics, graphite, mlflow, or one added by "
        "a module in skyline/ingest/vista/sources/ (docs/extending.md).",
    )
    url: str = key(
        ...,
        "Where the source is: an SQLAlchemy URL (sql) or the server's base URL. ${NAME} is "
        "replaced by the environment variable NAME, so credentials stay out of the file; "
        "{var_dir} by [skyline] var_dir.",
    )
    password_env: str = key(
        "", "Environment variable holding the password, set into url's credentials. Secret."
    )
    query: str = key(
        "",
        "What to pull: PromQL (prometheus, victoriametrics), a render target (graphite), an "
        "SQL query returning ts, value and optionally name (sql; :start and :end are bound "
        "to the window asked), experiment names separated by commas (mlflow).",
    )
    interval: float = key(60.0, "Seconds between two pulls of the source.", "s", gt=0)
    step: int = key(60, "Resolution asked of Prometheus, VictoriaMetrics and Graphite.", "s", ge=1)
    metric: str = key(
        "{name}",
        "Template of the Skyline metric name; {name} is the name the source gives each "
        "series (PromQL: __name__ and the labels, dotted; SQL: the name column; MLflow: "
        "experiment.run.key).",
    )
    namespace: str = key("", "Prefix put before every metric name of the source (with a dot).")
    timeout: float = key(30.0, "Longest a single fetch may take.", "s", gt=0)
    max_points: int = key(
        1000000, "Most points one fetch may return; more is an error, nothing is stored.",
        "points", ge=1,
    )  # fmt: skip
    lookback: int = key(
        0,
        "Rows up to this far behind the cursor are asked again, and those not stored yet are "
        "taken (late rows of a SQL table).",
        "s",
        ge=0,
    )
    backfill_days: float = key(
        0.0,
        "History loaded on the first pull: the last day into the live store, older into the "
        "rollups mirage reads. 0 starts from now.",
        "days",
        ge=0,
    )
    max_gap: int = key(
        86400,
        "After an outage the next pull asks from the cursor, at most this far back.",
        "s",
        ge=60,
    )
    failing_after: int = key(
        5,
        "Consecutive failed pulls after which the source is raised as a thunder event "
        "skyline.thunder.vista.<name>.failing.",
        "",
        ge=1,
    )
    options: dict[str, Any] = key(
        {}, "Kind-specific options (see docs/vista.md), validated by the source kind."
    )

    @model_validator(mode="after")
    def _metric_template(self) -> VistaSource:
        if "{name}" not in self.metric:
            raise ValueError(f"[[vista]] {self.name}: metric must contain {{name}}")
        return self
