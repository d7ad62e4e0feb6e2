"""The loading layers: the raw values of every source merged key by key, and for each key
which source gave it (so that an error names the config file, ``.env`` variable, environment
variable or override)."""

from __future__ import annotations

from typing import Any

KeyPath = tuple[str | int, ...]
"""A key inside the settings: names, and list indices (``("sources", 0, "name")``)."""


def dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text or "(top level)"


class Layers:
    """The merged raw data of all sources and, per key path, which source gave it."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.origins: dict[KeyPath, str] = {}

    def set(self, path: tuple[str, ...], value: Any, origin: str) -> None:
        node = self.data
        for i, key in enumerate(path[:-1]):
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
                self._forget(path[:i + 1])
            self.origins[path[:i + 1]] = origin
            node = child
        self._merge(node, path, value, origin)

    def _merge(self, node: dict[str, Any], path: tuple[str, ...], value: Any,
               origin: str) -> None:
        key = path[-1]
        if isinstance(value, dict):
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
                self._forget(path)
            self.origins[path] = origin
            for sub_key, sub_value in value.items():
                self._merge(child, (*path, sub_key), sub_value, origin)
        else:
            node[key] = value
            self._forget(path)
            self.origins[path] = origin

    def _forget(self, prefix: KeyPath) -> None:
        for path in [p for p in self.origins if p[:len(prefix)] == prefix]:
            del self.origins[path]

    def origin_of(self, path: KeyPath) -> str:
        for end in range(len(path), 0, -1):
            origin = self.origins.get(path[:end])
            if origin is not None:
                return origin
        return "defaults"
