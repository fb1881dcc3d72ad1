"""schemathesis against the submitter's and the challenger's OpenAPI schemas, over real HTTP to services
running on a real anvil: no 5xx, invalid requests refused with a 4xx, and every response as the schema
says. (Requests the schema allows may still be refused for what it cannot express, e.g. a model that is
not registered: that check is left out.)"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from .conftest import Harness


@pytest.fixture(scope="module")
def submitter_schema(harness: Harness):
    return schemathesis.openapi.from_url(f"{harness.url('submitter')}/openapi.json")


@pytest.fixture(scope="module")
def challenger_schema(harness: Harness):
    return schemathesis.openapi.from_url(f"{harness.url('challenger')}/openapi.json")


submitter = schemathesis.pytest.from_fixture("submitter_schema")
challenger = schemathesis.pytest.from_fixture("challenger_schema")


@submitter.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_submitter_answers_as_its_schema_says(case):
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


@challenger.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_challenger_answers_as_its_schema_says(case):
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
