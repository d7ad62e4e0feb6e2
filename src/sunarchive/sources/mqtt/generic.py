"""Generic MQTT mappings: a topic pattern with wildcards → a measurement, tags from topic
levels, field values from the payload or a JSON path, times a scale.

Pattern levels are literal text, ``+`` (any one level), ``{name}`` (any one level, captured as
``name`` for tag values and field names) or a final ``#`` (the rest). Everything here is pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from string import Formatter
from typing import TYPE_CHECKING, Any

from sunarchive.model import ConfigError, InputError
from sunarchive.sources.mqtt.readings import Decoded, Reading, parse_number, scaled

if TYPE_CHECKING:
    from sunarchive.sources.mqtt.config import MqttMapping

_CAPTURE = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

JsonPath = tuple[str | int, ...]


def parse_pattern(pattern: str) -> tuple[str, ...]:
    """The levels of a topic pattern; :class:`ValueError` if it is malformed."""
    levels = tuple(pattern.split("/"))
    for i, level in enumerate(levels):
        if level == "#" and i != len(levels) - 1:
            raise ValueError(f"topic {pattern!r}: '#' must be the last level")
        if ("+" in level or "#" in level) and level not in ("+", "#"):
            raise ValueError(f"topic {pattern!r}: a wildcard must fill a whole level")
        if ("{" in level or "}" in level) and not _CAPTURE.match(level):
            raise ValueError(f"topic {pattern!r}: {level!r} is not a capture like {{name}}")
    return levels


def captures(levels: Sequence[str]) -> list[str]:
    """The names captured by a pattern's ``{name}`` levels, in order."""
    return [m.group(1) for level in levels if (m := _CAPTURE.match(level))]


def template_names(template: str) -> list[str]:
    """The ``{name}`` placeholders in a tag or field template."""
    try:
        return [name for _, name, _, _ in Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"template {template!r}: {exc}") from None


def check_mapping(mapping: MqttMapping) -> None:
    """Validate a mapping's pattern and templates (:class:`ValueError` for pydantic)."""
    names = set(captures(parse_pattern(mapping.topic)))
    for template in [*mapping.tags.values(), *mapping.fields]:
        unknown = [n for n in template_names(template) if n not in names]
        if unknown:
            raise ValueError(f"{template!r} uses {unknown[0]!r}, which topic "
                             f"{mapping.topic!r} does not capture")
    for spec in mapping.fields.values():
        if spec.json_path is not None:
            parse_json_path(spec.json_path)


def mqtt_filter(levels: Sequence[str]) -> str:
    """The subscription filter of a pattern (captures become ``+``)."""
    return "/".join("+" if _CAPTURE.match(level) else level for level in levels)


def match_topic(levels: Sequence[str], topic: str) -> dict[str, str] | None:
    """The captured levels if ``topic`` matches the pattern, else ``None``."""
    parts = topic.split("/")
    found: dict[str, str] = {}
    for i, level in enumerate(levels):
        if level == "#":
            return found
        if i >= len(parts):
            return None
        if (capture := _CAPTURE.match(level)) is not None:
            found[capture.group(1)] = parts[i]
        elif level != "+" and level != parts[i]:
            return None
    return found if len(parts) == len(levels) else None


def parse_json_path(path: str) -> JsonPath:
    """``ENERGY.Power``, ``$.a[0].b`` or ``a.0.b`` as keys and list indexes."""
    text = path.strip()
    text = text[1:] if text.startswith("$") else text
    text = text.lstrip(".")
    if not text:
        return ()
    pieces: list[str | int] = []
    pos = 0
    for match in _PATH_PART.finditer(text):
        gap = text[pos:match.start()]
        if gap not in ("", "."):
            raise ValueError(f"JSON path {path!r} is malformed near {gap!r}")
        pieces.append(int(match.group(2)) if match.group(2) else match.group(1))
        pos = match.end()
    if text[pos:]:
        raise ValueError(f"JSON path {path!r} is malformed near {text[pos:]!r}")
    return tuple(pieces)


def extract(document: Any, path: JsonPath, where: str) -> Any:
    """The value at ``path`` in a parsed JSON document; :class:`InputError` if absent."""
    value = document
    for key in path:
        if isinstance(value, list):
            index = key if isinstance(key, int) else int(key) if key.isdigit() else None
            if index is None or index >= len(value):
                raise InputError(f"{where}: no element {key!r} in the JSON payload")
            value = value[index]
        elif isinstance(value, dict) and str(key) in value:
            value = value[str(key)]
        else:
            raise InputError(f"{where}: no key {key!r} in the JSON payload")
    return value


@dataclass(frozen=True)
class CompiledMapping:
    """A mapping ready to match: pattern levels, tag templates in profile order, fields."""

    levels: tuple[str, ...]
    measurement: str
    tag_templates: tuple[str, ...]
    fields: tuple[tuple[str, JsonPath | None, float], ...]

    def readings(self, topic: str, payload: bytes, found: Mapping[str, str]) -> list[Reading]:
        tags = tuple(t.format_map(found) for t in self.tag_templates)
        document: Any = None
        if any(path is not None for _, path, _ in self.fields):
            try:
                document = json.loads(payload)
            except ValueError as exc:
                raise InputError(f"{topic}: payload is not JSON ({exc})") from None
        out = []
        for name, path, scale in self.fields:
            raw = payload if path is None else extract(document, path, topic)
            value = scaled(parse_number(raw, topic), scale)
            out.append(Reading(self.measurement, tags, name.format_map(found), value))
        return out


def compile_mapping(mapping: MqttMapping, tag_order: Sequence[str]) -> CompiledMapping:
    """Bind a mapping to its profile's tag order; :class:`ConfigError` for unknown tags."""
    unknown = sorted(set(mapping.tags) - set(tag_order))
    if unknown:
        raise ConfigError(f"mapping {mapping.topic!r}: measurement {mapping.measurement!r} has "
                          f"no tag {unknown[0]!r} (its tags: {', '.join(tag_order) or 'none'})")
    fields = tuple((name, None if spec.json_path is None else parse_json_path(spec.json_path),
                    spec.scale) for name, spec in mapping.fields.items())
    return CompiledMapping(parse_pattern(mapping.topic), mapping.measurement,
                           tuple(mapping.tags.get(tag, "") for tag in tag_order), fields)


class GenericLayout:
    """Decodes messages with the first matching mapping; an optional status topic."""

    def __init__(self, mappings: Sequence[CompiledMapping], status_topic: str | None = None,
                 online_payload: str = "online", offline_payload: str = "offline") -> None:
        self.mappings = list(mappings)
        self.status_topic = status_topic
        self._states = {online_payload.strip(): True, offline_payload.strip(): False}

    def filters(self) -> list[str]:
        found = [mqtt_filter(m.levels) for m in self.mappings]
        if self.status_topic:
            found.append(self.status_topic)
        return list(dict.fromkeys(found))

    def decode(self, topic: str, payload: bytes) -> Decoded:
        if topic == self.status_topic:
            text = payload.decode("utf-8", errors="replace").strip()
            return Decoded(online=self._states.get(text))
        for mapping in self.mappings:
            found = match_topic(mapping.levels, topic)
            if found is not None:
                return Decoded(mapping.readings(topic, payload, found))
        return Decoded()
