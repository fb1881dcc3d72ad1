"""The compose test runs only from `make test-compose` (OPML_COMPOSE_TEST=1): it starts a Docker engine
and builds images, which `make test` does not."""

from __future__ import annotations

import os

import pytest

collect_ignore_glob = [] if os.environ.get("OPML_COMPOSE_TEST") == "1" else ["test_*.py"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
