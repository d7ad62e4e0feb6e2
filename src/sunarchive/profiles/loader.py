"""Load and validate profile files (YAML); errors name the file and the field."""

from __future__ import annotations

import unicodedata
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sunarchive.model import ConfigError, FieldKind
from sunarchive.profiles.spec import (
    IDENTIFIER,
    RESERVED_COLUMNS,
    FieldSpec,
    NamedRollup,
    Profile,
)

PROFILE_KEYS = {"name", "description", "tags", "fields", "sample_rate_hz", "max_gap_s",
                "chunk_interval", "extra", "rollups", "table", "tag_columns", "tag_types", "view",
                "view_hypertable", "view_json", "view_time"}
ROLLUP_KEYS = {"tier", "group_by"}
ROLLUP_TIERS = ("5min", "1hour", "daily")
FIELD_KEYS = {"unit", "kind", "description", "energy_column", "max_rate_per_s", "decimals",
              "type", "column"}
VALUE_TYPES = ("int", "uint", "float", "bool")


def _fail(source: str, key: str, why: str) -> ConfigError:
    return ConfigError(f"{source}: {key}: {why}")


def _identifier(source: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise _fail(source, key, f"{value!r} is not a valid name (lower case letters, digits, _)")
    return value


def exact_name(value: object) -> bool:
    """Is ``value`` a name a profile inferred from line protocol may keep exactly: any
    non-empty text without control characters (quoted in SQL)?"""
    return isinstance(value, str) and bool(value) and \
        not any(unicodedata.category(c) == "Cc" for c in value)


def _name(source: str, key: str, value: object, exact: bool) -> str:
    """A measurement, tag, field or column name: exactly as written in an inferred profile
    (``exact``), else a lower-case identifier."""
    if not exact:
        return _identifier(source, key, value)
    if not exact_name(value):
        raise _fail(source, key, f"{value!r} is not a name (non-empty text without control "
                                 "characters)")
    return str(value)


def _positive(source: str, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _fail(source, key, f"{value!r} must be a positive number")
    return float(value)


def _parse_field(source: str, name: str, raw: object, exact: bool = False) -> FieldSpec:
    key = f"fields.{name}"
    _name(source, key, name, exact)
    if not isinstance(raw, dict):
        raise _fail(source, key, "must be a mapping with at least 'unit' and 'kind'")
    unknown = set(raw) - FIELD_KEYS
    if unknown:
        raise _fail(source, f"{key}.{sorted(unknown)[0]}", f"unknown key; allowed: "
                    f"{', '.join(sorted(FIELD_KEYS))}")
    try:
        kind = FieldKind(raw.get("kind", "gauge"))
    except ValueError:
        raise _fail(source, f"{key}.kind", f"{raw.get('kind')!r} is not one of "
                    f"{', '.join(k.value for k in FieldKind)}") from None
    energy = raw.get("energy_column")
    if energy is not None:
        if kind is not FieldKind.POWER:
            raise _fail(source, f"{key}.energy_column", "only a 'power' field has energy")
        _identifier(source, f"{key}.energy_column", energy)
    rate = raw.get("max_rate_per_s")
    decimals = raw.get("decimals")
    if decimals is not None and (isinstance(decimals, bool) or not isinstance(decimals, int)
                                 or not 0 <= decimals <= 12):
        raise _fail(source, f"{key}.decimals", f"{decimals!r} must be an integer 0..12")
    value_type = raw.get("type")
    if value_type is not None and value_type not in VALUE_TYPES:
        raise _fail(source, f"{key}.type", f"{value_type!r} is not one of "
                    f"{', '.join(VALUE_TYPES)}")
    column = raw.get("column")
    if column is not None:
        _name(source, f"{key}.column", column, exact)
    return FieldSpec(
        column=column,
        name=name,
        unit=str(raw.get("unit", "")),
        kind=kind,
        description=str(raw.get("description", "")),
        energy_column=energy,
        max_rate_per_s=None if rate is None else _positive(source, f"{key}.max_rate_per_s", rate),
        decimals=decimals,
        value_type=value_type,
    )


def parse_profile(data: object, source: str) -> Profile:
    """Build a :class:`Profile` from parsed YAML, validating every key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a profile must be a mapping")
    unknown = set(data) - PROFILE_KEYS
    if unknown:
        raise _fail(source, sorted(unknown)[0], f"unknown key; allowed: "
                    f"{', '.join(sorted(PROFILE_KEYS))}")
    extra = data.get("extra") or {}
    exact = isinstance(extra, dict) and extra.get("inferred") is True
    raw_name = data.get("name")
    table = data.get("table")
    if table is None:
        name = _name(source, "name", raw_name, exact)
    else:
        table = _name(source, "table", table, exact)
        if not isinstance(raw_name, str) or not raw_name:
            raise _fail(source, "name", "must be a non-empty string")
        name = raw_name
    tags_raw = data.get("tags", [])
    if not isinstance(tags_raw, list):
        raise _fail(source, "tags", "must be a list of tag names")
    tags = tuple(_name(source, f"tags[{i}]", t, exact) for i, t in enumerate(tags_raw))
    fields_raw = data.get("fields")
    if not isinstance(fields_raw, dict) or not fields_raw:
        raise _fail(source, "fields", "must be a non-empty mapping of field name to spec")
    fields = tuple(_parse_field(source, str(n), spec, exact) for n, spec in fields_raw.items())
    profile = Profile(
        name=name,
        tags=tags,
        fields=fields,
        description=str(data.get("description", "")),
        sample_rate_hz=(None if data.get("sample_rate_hz") is None
                        else _positive(source, "sample_rate_hz", data["sample_rate_hz"])),
        max_gap_s=_positive(source, "max_gap_s", data.get("max_gap_s", 120)),
        chunk_interval=str(data.get("chunk_interval", "1 day")),
        source_file=source,
        extra=dict(data.get("extra") or {}),
        rollups=_parse_rollups(source, data.get("rollups"), tags),
        table_prefix=table,
        tag_columns=_tag_columns(source, data.get("tag_columns"), tags, exact),
        view=(None if data.get("view") is None
              else _identifier(source, "view", data.get("view"))),
        view_time=_identifier(source, "view_time", data.get("view_time", "time")),
        tag_types=_tag_types(source, data.get("tag_types"), tags),
        view_json=(None if data.get("view_json") is None
                   else _identifier(source, "view_json", data.get("view_json"))),
        view_hypertable=_view_hypertable(source, data),
    )
    _check_columns(profile)
    return profile


def _tag_columns(source: str, raw: object, tags: tuple[str, ...],
                 exact: bool) -> tuple[str, ...]:
    """Each tag's column, in tag order (empty when every column is its tag's name)."""
    if raw is None or raw == {}:
        return ()
    if not isinstance(raw, dict):
        raise _fail(source, "tag_columns", "must map tag names to column names")
    for tag, column in raw.items():
        if tag not in tags:
            raise _fail(source, f"tag_columns.{tag}", "is not a tag of this profile")
        _name(source, f"tag_columns.{tag}", column, exact)
    return tuple(str(raw.get(t, t)) for t in tags)


def _view_hypertable(source: str, data: dict[str, Any]) -> bool:
    """The ``view_hypertable`` key: true or false, and true only with a ``view``."""
    raw = data.get("view_hypertable", False)
    if not isinstance(raw, bool):
        raise _fail(source, "view_hypertable", "must be true or false")
    if raw and data.get("view") is None:
        raise _fail(source, "view_hypertable", "needs a `view` (the hypertable's name)")
    return raw


TAG_TYPES = ("text", "int")


def _tag_types(source: str, raw: object, tags: tuple[str, ...]) -> tuple[str, ...]:
    """Each tag's type in the profile's view, in tag order (empty when all are text)."""
    if raw is None or raw == {}:
        return ()
    if not isinstance(raw, dict):
        raise _fail(source, "tag_types", "must map tag names to text or int")
    for tag, kind in raw.items():
        if tag not in tags:
            raise _fail(source, f"tag_types.{tag}", "is not a tag of this profile")
        if kind not in TAG_TYPES:
            raise _fail(source, f"tag_types.{tag}", f"{kind!r} is not one of "
                        f"{', '.join(TAG_TYPES)}")
    return tuple(str(raw.get(t, "text")) for t in tags)


def _parse_rollups(source: str, raw: object, tags: tuple[str, ...]
                   ) -> tuple[NamedRollup, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise _fail(source, "rollups", "must map rollup names to {tier, group_by}")
    out = []
    for name, spec in raw.items():
        key = f"rollups.{name}"
        _identifier(source, key, name)
        if not isinstance(spec, dict) or set(spec) - ROLLUP_KEYS:
            raise _fail(source, key, "must be a mapping with 'tier' and optional 'group_by'")
        tier = spec.get("tier")
        if tier not in ROLLUP_TIERS:
            raise _fail(source, f"{key}.tier", f"{tier!r} is not one of "
                        f"{', '.join(ROLLUP_TIERS)}")
        group = spec.get("group_by")
        if group is not None:
            if not isinstance(group, list) or not group:
                raise _fail(source, f"{key}.group_by", "must be a non-empty list of tags")
            for tag in group:
                if tag not in tags:
                    raise _fail(source, f"{key}.group_by", f"{tag!r} is not a tag of this "
                                f"profile ({', '.join(tags)})")
        out.append(NamedRollup(str(name), str(tier), None if group is None else tuple(group)))
    return tuple(out)


def _check_columns(profile: Profile) -> None:
    """No two columns of a table may have one name, compared as DuckDB compares SQL names
    (case-insensitively)."""
    seen: set[str] = {c.casefold() for c in RESERVED_COLUMNS}
    for tag, column in zip(profile.tags, profile.tag_column_names, strict=True):
        if column.casefold() in seen:
            why = ("a reserved column name" if column in RESERVED_COLUMNS
                   else "the column of another tag")
            raise _fail(profile.source_file, "tags", f"{tag!r}: column {column!r} is {why}")
        seen.add(column.casefold())
    for spec in profile.fields:
        for col in spec.columns():
            if col.name.casefold() in seen and col.name not in ("sample_count", "covered_s"):
                raise _fail(profile.source_file, f"fields.{spec.name}",
                            f"column {col.name!r} clashes with another column")
            seen.add(col.name.casefold())


def load_profile_file(path: Path) -> Profile:
    """Load one YAML profile file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_profile(data, str(path))


def _builtin_profiles() -> list[Profile]:
    folder = resources.files("sunarchive.profiles") / "builtin"
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            out.append(parse_profile(yaml.safe_load(entry.read_text("utf-8")),
                                     f"<builtin>/{entry.name}"))
    return out


def load_profiles(extra_dir: Path | None = None) -> dict[str, Profile]:
    """Built-in profiles plus ``*.yaml`` files from ``extra_dir``; a user file may override."""
    profiles = {p.name: p for p in _builtin_profiles()}
    if extra_dir is not None:
        if not extra_dir.is_dir():
            raise ConfigError(f"{extra_dir}: profile directory does not exist")
        for path in sorted(extra_dir.glob("*.y*ml")):
            profile = load_profile_file(path)
            profiles[profile.name] = profile
    return profiles
