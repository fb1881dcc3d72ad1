"""schemathesis against the worker's OpenAPI schema over real HTTP: no 5xx, and every response
(status, content type, headers, body) is one the schema declares.

One check is left out: that every schema-valid request is accepted. This API judges some
requests by content no schema can express (a model's bytes against its root, a step against
that execution's limit, a step limit against this worker's maximum) and refuses them with a
422 that names the reason; tests/services/vm_worker/test_bad_input.py covers those."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

schema = schemathesis.pytest.from_fixture("worker_schema")


@pytest.fixture(scope="module")
def worker_schema(worker):
    return schemathesis.openapi.from_url(f"{worker}/openapi.json")


@schema.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_schema_says(case):
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
