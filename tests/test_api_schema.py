"""Schemathesis against the app's own OpenAPI schema: generated requests, in process, on Postgres.

Every operation of `/openapi.json` gets requests generated from its schema, positive (valid by
the schema) and negative (invalid by it), sent to the ASGI app in process with the HR admin's
token, then a smaller pass as an ordinary employee. Path ids are drawn half the time from the
test org's real people, drafts, versions and jobs, so requests reach past the 404s. Each
response must not be a 5xx, must have a status code, content type, headers and body the schema
documents for that operation. The number of requests made is printed and must be at least
1,000.

Run just this: `pytest tests/test_api_schema.py -m slow -s`.
"""

import time
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine

from service.api.app import create_app
from service.settings import Settings
from tests.api_org import CYCLE, ApiOrg

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# examples per operation and generation mode, per caller
PASSES: list[tuple[str, dict[GenerationMode, int]]] = [
    ("hal", {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 15}),
    ("cy", {GenerationMode.POSITIVE: 8, GenerationMode.NEGATIVE: 4}),
]
MIN_REQUESTS = 1000


def _known_values(api_org: ApiOrg) -> dict[str, list[Any]]:
    """Real values for path parameters, so generated requests reach existing things."""
    return {
        "person_id": sorted(api_org.ids.values()),
        "draft_id": sorted(api_org.drafts.values()),
        "version": [1, 2, 3],
        "job_id": list(range(1, 6)),
        "cycle": [CYCLE, "2026-Q1", "2026"],
        "flag": ["F1", "F2"],
    }


def _strategy(
    operation: Any, mode: GenerationMode, known: dict[str, list[Any]]
) -> st.SearchStrategy[Any]:
    generated = operation.as_strategy(mode)
    names = [p.name for p in operation.path_parameters]
    if mode is GenerationMode.NEGATIVE or not names or not all(n in known for n in names):
        return generated
    fixed = st.fixed_dictionaries({n: st.sampled_from(known[n]) for n in names}).flatmap(
        lambda values: operation.as_strategy(mode, path_parameters=values)
    )
    return st.one_of(fixed, generated)


def _run(
    operation: Any,
    strategy: st.SearchStrategy[Any],
    examples: int,
    call: Callable[[Any], None],
) -> None:
    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(case=strategy)
    def test(case: Any) -> None:
        call(case)

    test()


def test_generated_requests_get_no_5xx_and_match_the_schema(
    engine: Engine, settings: Settings, api_org: ApiOrg
) -> None:
    app = create_app(settings, engine=engine, worker=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, [op.label for op in operations]
    known = _known_values(api_org)
    sent: dict[str, int] = {}
    failures: list[str] = []
    started = time.monotonic()

    try:
        for who, modes in PASSES:
            headers = api_org.auth(who)

            def call(case: Any, headers: dict[str, str] = headers) -> None:
                sent[case.operation.label] = sent.get(case.operation.label, 0) + 1
                case.call_and_validate(headers=headers, checks=CHECKS)

            for operation in operations:
                for mode, examples in modes.items():
                    try:
                        _run(operation, _strategy(operation, mode, known), examples, call)
                    except Exception as exc:
                        failures.append(f"{who} {mode.value} {operation.label}:\n{exc}")
    finally:
        shutdown_lifespans()

    total = sum(sent.values())
    elapsed = time.monotonic() - started
    print(  # noqa: T201 - the number run is the point of the test
        f"\nschemathesis: {total} requests over {len(sent)} operations in {elapsed:.0f}s"
    )
    for label, count in sorted(sent.items()):
        print(f"  {count:5d}  {label}")  # noqa: T201
    assert not failures, "\n\n".join(failures)
    assert {op.label for op in operations} <= set(sent)
    assert total >= MIN_REQUESTS
