"""Ask a running instance over its API: how CLI commands keep working while ``run`` or
``demo`` holds the DuckDB file (DuckDB allows one read-write process per file)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pyarrow as pa

from sunarchive.model import SunarchiveError
from sunarchive.storage.base import QueryResult

TIMEOUT_S = 30.0


class RunningInstance:
    """The API of the process that holds the store."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = httpx.request(method, self.url + path, headers=self._headers,
                                     timeout=TIMEOUT_S, **kwargs)
        except httpx.HTTPError as exc:
            raise SunarchiveError(f"the running instance at {self.url} did not answer: "
                                  f"{exc}") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise SunarchiveError(f"{message} (from the running instance at {self.url})")
        return response.json()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer of any request (``params=``, ``json=`` as httpx takes them); an
        error answer raises :class:`SunarchiveError` with its message."""
        return self._call(method, path, **kwargs)

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = self._call("GET", "/api/v1/status", params={"detail": "true"})
        return data

    def query(self, measurement: str, params: dict[str, Any]) -> QueryResult:
        data = self._call("GET", f"/api/v1/measurements/{measurement}", params=params)
        return QueryResult(_table(data), tier=data.get("tier", ""))

    def sql(self, statement: str) -> QueryResult:
        return QueryResult(_table(self._call("POST", "/api/v1/sql", json={"sql": statement})))


def _table(data: dict[str, Any]) -> pa.Table:
    columns: list[str] = data["columns"]
    values: dict[str, list[Any]] = {c: [row[i] for row in data["rows"]]
                                    for i, c in enumerate(columns)}
    if "time" in values:
        values["time"] = [None if v is None else datetime.fromisoformat(v)
                          for v in values["time"]]
    return pa.table({c: pa.array(v) for c, v in values.items()})
