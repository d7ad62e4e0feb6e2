"""The settings documented: one :class:`SettingDoc` per leaf setting (type with its range,
default, unit from the name's suffix, description) and ``docs/settings.md`` made from them
(``python -m sunarchive.settings > docs/settings.md``)."""

from __future__ import annotations

import json
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import AwareDatetime, BaseModel, SecretStr
from pydantic.fields import FieldInfo

from sunarchive.settings.schema import (
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    SECRET_FILE_SUFFIX,
    is_model,
    leaves,
)

#: Unit of a setting, from the suffix of its name (checked in order).
UNIT_SUFFIXES: dict[str, str] = {
    "_ms": "ms",
    "_s": "s",
    "_mb": "MB",
    "_hz": "Hz",
    "_days": "days",
    "_deg": "degrees",
    "_bytes": "bytes",
}


@dataclass(frozen=True)
class SettingDoc:
    """One leaf setting, for docs and help output."""

    name: str          #: dotted name, e.g. ``simulator.panels``
    env_var: str       #: e.g. ``SUNARCHIVE_SIMULATOR__PANELS``
    type: str          #: human-readable type with constraints, e.g. ``int (> 0)``
    default: Any       #: the default value (``None`` = unset)
    unit: str | None   #: from the name suffix, e.g. ``s`` for ``lateness_s``
    help: str          #: the field description
    secret: bool = False

    @property
    def default_text(self) -> str:
        """The default as text: JSON-like, ``None`` for unset."""
        if self.default is None:
            return "None"
        if isinstance(self.default, Path):
            return str(self.default)
        if isinstance(self.default, str):
            return self.default
        if isinstance(self.default, list | dict):
            return json.dumps(self.default)
        return repr(self.default)


def _type_text(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _type_text(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = get_args(annotation)
        parts = [_type_text(a) for a in args if a is not type(None)]
        if type(None) in args:
            parts.append("None")
        return " | ".join(parts)
    if origin is Literal:
        return "one of " + ", ".join(str(v) for v in get_args(annotation))
    if origin is list:
        return f"list[{_type_text(get_args(annotation)[0])}]"
    if annotation is AwareDatetime:
        return "datetime with offset"
    if annotation is SecretStr:
        return "secret str"
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "path"
    if is_model(annotation):
        return str(annotation.__name__)
    return getattr(annotation, "__name__", str(annotation))


def _constraint_text(info: FieldInfo) -> str:
    parts: list[str] = []
    for item in info.metadata:
        if isinstance(item, annotated_types.Gt):
            parts.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Ge):
            parts.append(f"≥ {item.ge}")
        elif isinstance(item, annotated_types.Lt):
            parts.append(f"< {item.lt}")
        elif isinstance(item, annotated_types.Le):
            parts.append(f"≤ {item.le}")
        elif isinstance(item, annotated_types.MinLen):
            parts.append(f"length ≥ {item.min_length}")
    return f" ({', '.join(parts)})" if parts else ""


def unit_of(name: str) -> str | None:
    """The unit implied by a setting name's suffix, or ``None``."""
    for suffix, unit in UNIT_SUFFIXES.items():
        if name.endswith(suffix):
            return unit
    return None


def describe_settings() -> list[SettingDoc]:
    """Every leaf setting (nested models flattened to dotted names), in schema order."""
    docs: list[SettingDoc] = []
    for leaf in leaves():
        info = leaf.field
        default = info.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):  # pragma: no cover - models are flattened
            default = default.model_dump(mode="json")
        docs.append(SettingDoc(
            name=leaf.name,
            env_var=leaf.env_var,
            type=_type_text(info.annotation) + _constraint_text(info),
            default=default,
            unit=unit_of(leaf.path[-1]),
            help=info.description or "",
            secret=leaf.secret,
        ))
    return docs


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_markdown() -> str:
    """A markdown page with a table of all settings (the content of ``docs/settings.md``)."""
    lines = [
        "# Settings",
        "",
        "<!-- Generated from src/sunarchive/settings/schema.py by settings_markdown(); "
        "do not edit by hand.",
        "     Regenerate: python -m sunarchive.settings > docs/settings.md -->",
        "",
        "Sources, lowest precedence first: defaults, the YAML config file, the `.env` file, "
        "the process environment, command-line flags.",
        "",
        "* YAML keys are the setting names; nested settings are nested mappings "
        "(`simulator: {panels: 8}`). Unknown keys are an error. String values may use "
        "`${VAR}` or `${VAR:-default}`; `$${` is a literal `${`.",
        f"* Environment variables are `{ENV_PREFIX}` plus the name in upper case, nested "
        f"with `{ENV_NESTED_DELIMITER}` (`{ENV_PREFIX}SIMULATOR__PANELS=8`). An empty value "
        "unsets an optional setting; lists are JSON.",
        f"* Secrets can be read from a file: `<VARIABLE>{SECRET_FILE_SUFFIX}=/path` "
        f"(e.g. `{ENV_PREFIX}DATABASE_PASSWORD{SECRET_FILE_SUFFIX}`); surrounding whitespace "
        "is stripped.",
        "* Numbers must be finite (`.inf`, `.nan` and `inf` are refused) and within the range "
        "shown in the Type column; a value outside it stops the start with one line naming "
        "the key. The same holds for the keys of every source (docs/sources.md).",
        "",
        "| Setting | Environment variable | Type | Default | Unit | Description |",
        "|---|---|---|---|---|---|",
    ]
    for doc in describe_settings():
        description = doc.help + (" Secret." if doc.secret else "")
        cells = [f"`{doc.name}`", f"`{doc.env_var}`", doc.type, f"`{doc.default_text}`",
                 doc.unit or "", description]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
