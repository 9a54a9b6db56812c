"""Renders the settings schema as the shipped ``etc/skyline.conf`` and as
``docs/configuration.md``, and any settings as TOML for ``skyline config show``.

Regenerate after changing ``skyline/settings/model.py``:
``skyline config template > etc/skyline.conf`` and
``python -m skyline.settings.doc > docs/configuration.md``.
"""

from __future__ import annotations

import json
from typing import Any, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from skyline.registry import Registry
from skyline.settings import AlertRule, BoundaryRule, Settings
from skyline.settings import model as schema
from skyline.settings.algorithms import CustomAlgorithm
from skyline.settings.thunder import DataHealthRule
from skyline.settings.vista import VistaSource

RULE_EXAMPLES = {
    "alerts": [
        {"pattern": "stats.web.*.requests", "channel": "slack", "expiration": 3600},
        {"pattern": "carbon.agents", "channel": "smtp", "expiration": 1800, "mirage_hours": 168},
    ],
    "boundary": [
        {
            "pattern": "stats.payments.succeeded",
            "algorithm": "less_than",
            "limit": 5.0,
            "expiry": 900,
            "alert_threshold": 3,
            "channels": ["pagerduty"],
        }
    ],
    "data_health": [
        {"namespace": "stats.payments", "stale_after": 300, "min_fraction": 0.8},
        {"namespace": "re:^host\\.db[0-9]+\\.", "name": "db_hosts", "stale_after": 900},
    ],
    "custom_algorithms": [
        {
            "name": "level_shift",
            "source": "/opt/skyline/algorithms/level_shift.py",
            "namespaces": ["stats.payments"],
            "parameters": {"window": 30, "threshold": 4.0},
            "max_execution_time": 0.1,
            "consensus": 1,
        }
    ],
    "vista": [
        {
            "name": "orders",
            "kind": "sql",
            "url": "postgresql+psycopg://reader@db.example.com/shop",
            "password_env": "SHOP_DB_PASSWORD",
            "query": "SELECT ts, value, name FROM hourly_orders WHERE ts > :start AND ts <= :end",
            "interval": 300.0,
            "namespace": "shop",
            "lookback": 3600,
            "backfill_days": 30.0,
        }
    ],
}
RULE_MODELS: dict[str, type[BaseModel]] = {
    "alerts": AlertRule,
    "boundary": BoundaryRule,
    "custom_algorithms": CustomAlgorithm,
    "vista": VistaSource,
    "data_health": DataHealthRule,
}


def toml_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot render {type(value).__name__} as TOML")


def _unit(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    return str(extra.get("unit", "")) if isinstance(extra, dict) else ""


def _description(field: FieldInfo) -> str:
    """The field's doc, plus the names it may take when they are extensions (``choices``:
    the package of their registry, asked now, so an added extension is listed)."""
    extra = field.json_schema_extra
    package = extra.get("choices") if isinstance(extra, dict) else None
    if not isinstance(package, str):
        return field.description or ""
    names = ", ".join(sorted(Registry.of(package).names()))
    return f"{field.description} Known: {names}."


def _default(field: FieldInfo) -> Any:
    return field.get_default(call_default_factory=True)


def _doc_line(field: FieldInfo) -> str:
    unit = _unit(field)
    suffix = f" Unit: {unit}." if unit and unit not in ("path", "port") else ""
    return f"{_description(field)}{suffix}"


def _tables(name: str, model: type[BaseModel]) -> list[tuple[str, type[BaseModel]]]:
    """A section and its nested sub-sections as (table name, model), parents first."""
    out = [(name, model)]
    for fname, field in model.model_fields.items():
        if _is_model(field.annotation):
            out += _tables(f"{name}.{fname}", field.annotation)  # type: ignore[arg-type]
    return out


def _is_model(annotation: object) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_values(field: FieldInfo) -> type[BaseModel] | None:
    """The value model of a ``dict[str, Model]`` field (named sub-tables), else None."""
    args = get_args(field.annotation)
    return args[1] if get_origin(field.annotation) is dict and _is_model(args[1]) else None


def _plain_fields(model: type[BaseModel]) -> list[tuple[str, FieldInfo]]:
    return [(n, f) for n, f in model.model_fields.items()
            if not _is_model(f.annotation) and not _model_values(f)]  # fmt: skip


def _default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    default = _default(field)
    return f"default {toml_value(default)}" if default is not None else "default none"


def _commented_model(model: type[BaseModel]) -> list[str]:
    return [f"#   {n}: {_doc_line(f)} ({_default_text(f)})" for n, f in model.model_fields.items()]


def render_template() -> str:
    """The documented default configuration file: every key with its default."""
    out = [
        "# Skyline settings (TOML). Generated by `skyline config template`: every key is",
        "# listed with its default and meaning; docs/configuration.md has the same in a table.",
        "# Environment variables SKYLINE__<SECTION>__<KEY> override any key,",
        "# e.g. SKYLINE__HORIZON__PICKLE_PORT=12024 (deeper tables: SKYLINE__ALERTERS__SLACK__TOKEN).",
    ]
    for section, section_model in schema.SECTIONS.items():
        for table, sub in _tables(section, section_model):
            out += ["", f"[{table}]", f"# {' '.join((sub.__doc__ or '').split())}"]
            for name, field in _plain_fields(sub):
                out += [f"# {_doc_line(field)}", f"{name} = {toml_value(_default(field))}"]
            for name, field in sub.model_fields.items():
                values = _model_values(field)
                if values is not None:
                    out += [f"# {field.description} Keys of each:"] + _commented_model(values)
                    out.append(f"# [{table}.{name}.NAME]")
    for name, rule in RULE_MODELS.items():
        out += (
            ["", f"# {' '.join((rule.__doc__ or '').split())}"]
            + _commented_model(rule)
            + ["# Examples:"]
        )
        for example in RULE_EXAMPLES[name]:
            out.append(f"# [[{name}]]")
            out += [f"# {k} = {toml_value(v)}" for k, v in example.items()]
        out += _default_rules(name)
    return "\n".join(out) + "\n"


def _default_rules(name: str) -> list[str]:
    """The tables a rule list has by default (the demo's [[alerts]] rule), written out:
    what is in effect while the file has no such table of its own."""
    field = Settings.model_fields[name]
    rules = _default(field)
    if not rules:
        return []
    out = [f"# The default [[{name}]] (a file with no [[{name}]] table has it): "
           f"{(field.description or '').split('; the default is ', 1)[-1]} Tables you add below keep it; "
           "delete it when the demo's metrics should not alert."]  # fmt: skip
    for rule in rules:
        out.append(f"[[{name}]]")
        out += [f"{k} = {toml_value(v)}" for k, v in rule.model_dump().items() if v is not None]
    return out


def _toml_table(table: str, model: type[BaseModel], data: dict[str, Any]) -> list[str]:
    """One table of ``data`` (a model_dump of ``model``) and its sub-tables, as TOML."""
    out = [f"[{table}]"]
    out += [f"{n} = {toml_value(data[n])}" for n, _ in _plain_fields(model) if data[n] is not None]
    out.append("")
    for name, field in model.model_fields.items():
        if _is_model(field.annotation):
            out += _toml_table(f"{table}.{name}", field.annotation, data[name])  # type: ignore[arg-type]
        elif (values := _model_values(field)) is not None:
            for key_name, sub in data[name].items():
                out += _toml_table(f"{table}.{name}.{key_name}", values, sub)
    return out


def render_toml(settings: Settings, data: dict[str, Any]) -> str:
    """``data`` (e.g. ``settings.redacted``) as TOML, sections in schema order."""
    out: list[str] = []
    for section, section_model in schema.SECTIONS.items():
        out += _toml_table(section, section_model, data[section])
    for name in RULE_MODELS:
        for rule in data[name]:
            out += [f"[[{name}]]"]
            out += [f"{k} = {toml_value(v)}" for k, v in rule.items() if v is not None] + [""]
    return "\n".join(out)


def _markdown_table(title: str, model: type[BaseModel]) -> list[str]:
    out = ["", f"## {title}", "", " ".join((model.__doc__ or "").split()), ""]
    out += ["| key | default | unit | meaning |", "|---|---|---|---|"]
    for name, field in _plain_fields(model):
        default = _default_text(field).removeprefix("default ")
        default = default if default in ("required", "none") else f"`{default}`"
        out.append(f"| `{name}` | {default} | {_unit(field)} | {_description(field)} |")
    return out


def render_markdown() -> str:
    out = [
        "# Configuration",
        "",
        "Skyline reads one TOML file: `etc/skyline.conf`, or the file named by the environment",
        "variable `SKYLINE_CONF`. With no file at all every key takes its default (embedded Redis,",
        "SQLite under `var/`). Any key can be overridden by an environment variable",
        "`SKYLINE__<SECTION>__<KEY>`; its value is read as a TOML value (`12024`, `true`,",
        '`"text"`), or as a plain string when it is not one. Lists of tables (`[[alerts]]`,',
        "`[[boundary]]`) cannot be overridden from the environment.",
        "",
        "The settings are validated once at start. An invalid file or value stops the daemon or",
        "command with one line naming the key, the bad value and the fix, for example:",
        "",
        "```",
        "etc/skyline.conf: [horizon] pickle_port = 'abc': Input should be a valid integer; the default is 2024",
        "```",
        "",
        "Check a file without starting anything with `skyline config check [FILE]`; print the",
        "effective settings, secrets hidden, with `skyline config show`.",
        "",
        "This page is generated from `skyline/settings/model.py` by `python -m skyline.settings.doc`.",
    ]
    for section, section_model in schema.SECTIONS.items():
        for table, sub in _tables(section, section_model):
            out += _markdown_table(f"`[{table}]`", sub)
            for name, field in sub.model_fields.items():
                if (values := _model_values(field)) is not None:
                    out += _markdown_table(f"`[{table}.{name}.NAME]` (one table each)", values)
    for name, rule in RULE_MODELS.items():
        out += _markdown_table(f"`[[{name}]]` (one table per rule)", rule)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
