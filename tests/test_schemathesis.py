"""Schemathesis against /api/openapi.json: whatever it generates, every answer is documented and never a 5xx.

It runs against a real engine process (the server ``tornado-engine serve``
builds, admin API on), loads the document from the engine itself, and is
bounded and repeatable: a fixed number of derandomized examples per operation.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tornado_engine.testing import EngineProcess, RedisServer, write_config

# What a document promises. Not positive_data_acceptance: the document cannot say which tokens and
# pairs the venues trade, so a schema-valid order may rightly be refused (400, naming the field).
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.allow_header_conformance,
]
BOUNDED = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def engine_url(tmp_path_factory) -> Iterator[str]:
    redis = RedisServer().start()
    config = write_config(tmp_path_factory.mktemp("schemathesis"), {"orders": {"admin_api": True}})
    engine = EngineProcess(config, redis.url).start()
    yield engine.base_url
    engine.stop()
    redis.stop()


def operations(engine_url: str) -> list:
    """Every operation of the document the engine serves."""
    schema = schemathesis.openapi.from_url(f"{engine_url}/api/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_generated_request_gets_a_documented_answer(engine_url, mode):
    # Driven through Hypothesis directly: schemathesis' pytest plugin reads a node
    # attribute pytest 9 no longer has.
    for operation in operations(engine_url):
        if mode is GenerationMode.NEGATIVE and not (
            operation.query or operation.path_parameters or operation.body
        ):
            continue  # nothing to get wrong: no parameters, no body

        @BOUNDED
        @given(case=operation.as_strategy(generation_mode=mode))
        def answers_as_documented(case) -> None:
            case.call_and_validate(base_url=engine_url, checks=CHECKS, timeout=10)

        try:
            answers_as_documented()
        except Unsatisfiable:  # every string is a valid orderId: there is no wrong one to send
            assert mode is GenerationMode.NEGATIVE
