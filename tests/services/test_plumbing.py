"""The app factory every service uses, over real HTTP: error shapes, request ids, body limits,
readiness and metrics."""

import re

import httpx
import pytest
from fastapi import APIRouter

from opml.errors import Conflict, NotFound
from opml.service.app import Check, create_app
from opml.service.settings import ServiceSettings
from opml.service.testing import serve_in_thread


@pytest.fixture(scope="module")
def base_url():
    router = APIRouter()
    ready = {"database": False}

    @router.get("/things/{thing_id}")
    def thing(thing_id: int):
        if thing_id == 0:
            raise NotFound("no thing 0")
        if thing_id == 1:
            raise Conflict("thing 1 is busy", details={"until": 5})
        if thing_id == 2:
            raise RuntimeError("a bug")
        return {"id": thing_id}

    @router.post("/echo")
    def echo(body: dict):
        return body

    @router.post("/ready")
    def make_ready():
        ready["database"] = True
        return ready

    def database_ok():
        if not ready["database"]:
            raise RuntimeError("not migrated")

    app = create_app(
        name="plumbing", title="Plumbing", description="test", settings=ServiceSettings(),
        routers=[router], checks=[Check("database", database_ok)], max_body_bytes=1_000,
    )  # fmt: skip
    with serve_in_thread(app) as url:
        yield url


def test_errors_have_their_kinds_status_and_one_shape(base_url):
    assert httpx.get(f"{base_url}/things/7").json() == {"id": 7}
    missing = httpx.get(f"{base_url}/things/0")
    assert missing.status_code == 404 and missing.json() == {"error": "not_found", "message": "no thing 0"}
    busy = httpx.get(f"{base_url}/things/1")
    assert busy.status_code == 409 and busy.json()["details"] == {"until": 5}
    invalid = httpx.get(f"{base_url}/things/seven")
    assert invalid.status_code == 422 and invalid.json()["error"] == "bad_input"
    assert "path.thing_id" in invalid.json()["message"]


def test_a_body_that_cannot_be_parsed_is_a_documented_400(base_url):
    not_utf8 = httpx.post(f"{base_url}/echo", content=b"=l\xff", headers={"content-type": "application/json"})
    assert not_utf8.status_code == 400 and not_utf8.json()["error"] == "bad_input"
    documented = httpx.get(f"{base_url}/openapi.json").json()["paths"]["/echo"]["post"]["responses"]
    assert "400" in documented


def test_a_bug_is_a_500_that_names_the_request_and_shows_no_stack_trace(base_url):
    response = httpx.get(f"{base_url}/things/2", headers={"x-request-id": "abc-123"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "abc-123"
    assert "abc-123" in response.json()["message"] and "Traceback" not in response.text


def test_every_response_carries_a_request_id(base_url):
    first = httpx.get(f"{base_url}/healthz").headers["x-request-id"]
    second = httpx.get(f"{base_url}/healthz").headers["x-request-id"]
    assert first and second and first != second


def test_bodies_over_the_limit_are_refused_before_they_are_read(base_url):
    assert httpx.post(f"{base_url}/echo", json={"a": "b" * 10}).status_code == 200
    too_large = httpx.post(f"{base_url}/echo", json={"a": "b" * 2_000})
    assert too_large.status_code == 413 and "1000 bytes" in too_large.json()["message"]

    def chunks():  # no Content-Length: counted as it streams
        yield b'{"a": "'
        for _ in range(100):
            yield b"b" * 100
        yield b'"}'

    streamed = httpx.post(f"{base_url}/echo", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_readiness_follows_the_checks_and_metrics_count_requests(base_url):
    not_ready = httpx.get(f"{base_url}/readyz")
    assert not_ready.status_code == 503 and not_ready.json()["checks"]["database"].startswith("failing")
    httpx.post(f"{base_url}/ready")
    assert httpx.get(f"{base_url}/readyz").json() == {"ready": True, "checks": {"database": "ok"}}
    metrics = httpx.get(f"{base_url}/metrics").text
    assert 'plumbing_http_requests_total{method="GET",route="/things/{thing_id}",status="404"}' in metrics
    assert "plumbing_up 1.0" in metrics


def test_json_routes_refuse_other_content_types_with_415(base_url):
    for headers in ({"content-type": "text/plain"}, {"content-type": "application/x-www-form-urlencoded"}, {}):
        response = httpx.post(f"{base_url}/echo", content=b'{"a": 1}', headers=headers)
        assert response.status_code == 415, (headers, response.text)
        assert response.json()["error"] == "bad_input" and "application/json" in response.json()["message"]
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = httpx.post(f"{base_url}/echo", content=b'{"a": 1}', headers={"content-type": content_type})
        assert response.status_code == 200 and response.json() == {"a": 1}, content_type
    documented = httpx.get(f"{base_url}/openapi.json").json()["paths"]
    assert "415" in documented["/echo"]["post"]["responses"]
    assert "415" not in documented["/things/{thing_id}"]["get"]["responses"]  # no body, nothing to refuse
    assert httpx.get(f"{base_url}/things/7", headers={"content-type": "text/plain"}).status_code == 200


def test_a_body_that_is_not_json_is_a_400_that_says_where(base_url):
    response = httpx.post(f"{base_url}/echo", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "bad_input",
        "message": "the body is not valid JSON: Expecting property name enclosed in double quotes at character 1",
    }


def test_swagger_ui_and_redoc_are_served_from_the_service_itself(base_url):
    """Every script, style and icon the pages load is a path on this service (no CDN, no web fonts)."""
    for page in ("/docs", "/redoc"):
        html = httpx.get(f"{base_url}{page}").text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets, page
        assert "http" not in html.replace("http-equiv", ""), page  # no absolute URL anywhere in the page
        for asset in assets:
            assert asset.startswith("/"), (page, asset)
            response = httpx.get(f"{base_url}{asset}")
            assert response.status_code == 200 and len(response.content) > 1_000, (page, asset)
