"""A schemathesis run over the OpenAPI schema of a real server (`sunarchive serve` on a free
port, serving a copy of the demo store): generated requests to every documented operation;
not one may get a server error (5xx), and every status and error body it gets is the one the
schema documents. Plus the schema itself: unique operation ids, documented token answers."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.serving import serve, stop

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api_schema(demo_db: Path) -> Iterator[Any]:
    folder = Path(tempfile.mkdtemp(prefix="sunarchive-schema-"))
    db = folder / "demo.duckdb"
    shutil.copy(demo_db, db)
    served = serve(db, "--timezone", "Europe/Berlin")
    try:
        yield schemathesis.openapi.from_url(served.url + "/openapi.json")
    finally:
        stop(served)
        shutil.rmtree(folder, ignore_errors=True)


def test_no_server_errors(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20, "the schema lost operations"
    failures: list[str] = []
    statuses: list[int] = []
    for operation, mode in itertools.product(operations, GenerationMode):
        try:
            _exercise(operation, mode, statuses)
        except Unsatisfiable:   # no parameters to make invalid: nothing negative to send
            assert mode is GenerationMode.NEGATIVE, f"{operation.path}: no valid request"
        except Exception as exc:  # collect every failing operation, then report them all
            failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): "
                            f"{exc}")
    assert not failures, "\n\n".join(failures)
    assert len(statuses) >= 20 * len(operations)          # the run did send requests
    assert any(200 <= s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses)


def _exercise(operation: Any, mode: GenerationMode, statuses: list[int]) -> None:
    """Valid (positive) or invalid (negative) requests generated from the schema."""

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=30, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        response = case.call(timeout=30)
        statuses.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                  response_schema_conformance])

    check()


#: Operations that answer without a token even when tokens are configured.
PUBLIC = {("/ping", "get"), ("/ping", "head"), ("/api/v1/health", "get"), ("/health", "get"),
          ("/ready", "get")}


def test_operation_ids_unique_and_token_answers_documented(api_schema: Any) -> None:
    raw = api_schema.raw_schema
    operations = [(path, method, op) for path, item in raw["paths"].items()
                  for method, op in item.items()]
    ids = [op["operationId"] for _, _, op in operations]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert raw["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    for path, method, op in operations:
        public = (path, method) in PUBLIC
        assert ("401" in op["responses"]) is not public, (method, path)
        assert (op.get("security") == [{"token": []}]) is not public, (method, path)
        for status, answer in op["responses"].items():
            assert answer.get("description"), (method, path, status)
