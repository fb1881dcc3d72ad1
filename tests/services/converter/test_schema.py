"""schemathesis against the converter's OpenAPI schema, over real HTTP: generated requests (valid ones,
invalid ones and the schema's examples) never get a 5xx, invalid ones get a 4xx, and every response's
status code, content type, headers and body conform to the schema."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import SEED, running_converter

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The converter's schema, served by a converter holding the seed model (the id in the examples)."""
    with running_converter(tmp_path_factory.mktemp("schema"), max_upload_bytes=1 << 20) as converter:
        converter.created((SEED / "mnist-small.state_dict").read_bytes())
        yield schemathesis.openapi.from_url(f"{converter.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_conforms_to_its_schema(case):
    case.call_and_validate(checks=CHECKS)
