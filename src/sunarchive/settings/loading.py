"""Loading the settings in layers: defaults < the YAML config file (``${VAR}`` substituted)
< ``.env`` < ``SUNARCHIVE_*`` environment variables (and ``*_FILE`` secrets) < the upstream
names (:mod:`.upstream`, where ours do not give the setting) < overrides; then validation,
with every problem named by its source and dotted key."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from pydantic import ValidationError

from sunarchive.model import ConfigError
from sunarchive.settings.layers import KeyPath, Layers, dotted
from sunarchive.settings.schema import SECRET_FILE_SUFFIX, Settings, leaves
from sunarchive.settings.upstream import (
    apply_upstream_database_env,
    apply_upstream_influxdb_env,
    apply_upstream_sensor_env,
)
from sunarchive.sources.catalog import SOURCE_TAGS

_VAR_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


def _substitute(value: str, lookup: Mapping[str, str], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "$${":
            return "${"
        name = match.group(1)
        if name is None:
            raise ConfigError(f"{where}: malformed variable reference; use ${{NAME}} or "
                              "${NAME:-default}, or $${ for a literal ${")
        found = lookup.get(name)
        default = match.group(2)
        if default is not None and not found:
            return default
        if found is None:
            raise ConfigError(f"{where}: environment variable {name} is not set and has no "
                              f"default (use ${{{name}:-default}} to give one)")
        return found

    return _VAR_RE.sub(replace, value)


def _expand(node: Any, lookup: Mapping[str, str], file: Path, path: KeyPath) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise ConfigError(f"{file}: {dotted((*path, str(key)))}: keys must be "
                                  "strings")
            out[key] = _expand(value, lookup, file, (*path, key))
        return out
    if isinstance(node, list):
        return [_expand(v, lookup, file, (*path, i)) for i, v in enumerate(node)]
    if isinstance(node, str):
        return _substitute(node, lookup, f"{file}: {dotted(path)}")
    return node


def _read_yaml(file: Path, lookup: Mapping[str, str]) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: {_not_utf8(exc)}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of setting names to values at the top "
                          f"level, got {type(data).__name__}")
    expanded: dict[str, Any] = _expand(data, lookup, file, ())
    return expanded


def _not_utf8(exc: UnicodeDecodeError) -> str:
    return (f"not UTF-8 text: byte {exc.object[exc.start]:#04x} at position {exc.start}; "
            "save the file as UTF-8")


def _read_dotenv(file: Path) -> dict[str, str]:
    """The variables of a ``.env`` file; ``{}`` when there is none."""
    if not file.is_file():
        return {}
    try:
        values = dotenv_values(file, interpolate=False)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: {_not_utf8(exc)}") from None
    return {k: v for k, v in values.items() if v is not None}


def _apply_env(layers: Layers, variables: Mapping[str, str | None],
               origin_of_var: Callable[[str], str]) -> None:
    """Put ``SUNARCHIVE_*`` values (and ``*_FILE`` secrets) into ``layers``."""
    for leaf in leaves():
        var = leaf.env_var
        raw = variables.get(var)
        file_var = var + SECRET_FILE_SUFFIX
        file_name = variables.get(file_var) if leaf.secret else None
        if raw is not None and file_name is not None:
            raise ConfigError(f"{origin_of_var(var)}: {leaf.name}: set either {var} or "
                              f"{file_var}, not both")
        if file_name is not None:
            origin = origin_of_var(file_var)
            try:
                content = Path(file_name).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{origin}: {leaf.name}: cannot read secret file "
                                  f"{file_name}: {exc.strerror or exc}") from None
            layers.set(leaf.path, content, origin)
        elif raw is not None:
            origin = origin_of_var(var)
            value: Any = raw
            if raw == "" and leaf.optional:
                value = None
            elif leaf.structured:
                try:
                    value = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{origin}: {leaf.name}: expected JSON: {exc}") from None
            layers.set(leaf.path, value, origin)


def _drop_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def _error_path(loc: tuple[str | int, ...]) -> KeyPath:
    """Drop the union tag pydantic puts into locations inside ``sources``."""
    if (len(loc) > 2 and loc[0] == "sources" and isinstance(loc[1], int)
            and loc[2] in SOURCE_TAGS):
        return (*loc[:2], *loc[3:])
    return loc


def _error_message(error: Mapping[str, Any]) -> str:
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown setting (extra inputs are not permitted)"
    if error["type"] == "timezone_aware":
        return ("time has no UTC offset; give an explicit offset such as +00:00 or Z "
                f"({message})")
    if error["type"] == "union_tag_not_found":
        return f"missing type (one of: {', '.join(sorted(SOURCE_TAGS))})"
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def load_settings(config_file: Path | None = None,
                  overrides: Mapping[str, Any] | None = None,
                  env: Mapping[str, str] | None = None,
                  dotenv_file: Path | None = Path(".env")) -> Settings:
    """Build :class:`Settings` from defaults < ``config_file`` < ``dotenv_file`` < ``env``
    (``None`` = ``os.environ``) < ``overrides``.

    ``overrides`` keys are setting names, dotted for nested ones (``"simulator.panels"``) or
    with a mapping value (``{"simulator": {"panels": 8}}``); ``None`` values are ignored.
    A missing ``dotenv_file`` is skipped; ``dotenv_file=None`` reads no ``.env`` file.
    Raises :class:`ConfigError` naming the source, the dotted key and the reason.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    dotenv = _read_dotenv(dotenv_file) if dotenv_file is not None else {}

    layers = Layers()
    if config_file is not None:
        lookup = {**dotenv, **environ}
        for key, value in _read_yaml(config_file, lookup).items():
            layers.set((key,), value, str(config_file))
    if dotenv:
        _apply_env(layers, dotenv, lambda var: f"{dotenv_file} (variable {var})")
    _apply_env(layers, environ, lambda var: f"environment variable {var}")
    apply_upstream_database_env(layers, {**dotenv, **environ})
    apply_upstream_influxdb_env(layers, {**dotenv, **environ})
    apply_upstream_sensor_env(layers, {**dotenv, **environ})
    for key, value in (overrides or {}).items():
        if value is not None:
            layers.set(tuple(key.split(".")), _drop_none(value), "override")

    try:
        return Settings.model_validate(layers.data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = _error_path(tuple(error["loc"]))
            problems.append(f"{layers.origin_of(path)}: {dotted(path)}: "
                            f"{_error_message(error)}")
        # ``from None``: the pydantic error would show input values, which may be secrets.
        raise ConfigError("\n".join(problems)) from None
