"""HTTP clients for calling other services: timeouts on everything, retries on connection errors and
5xx answers with backoff, and errors that say which service failed."""

from __future__ import annotations

import time
from typing import Any

import httpx

from ..errors import BadInput, NotFound, Upstream

RETRY_STATUSES = {502, 503, 504}


class ServiceClient:
    def __init__(self, name: str, base_url: str, *, timeout: float = 30.0, attempts: int = 4, backoff: float = 0.2):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.attempts = attempts
        self.backoff = backoff
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response, retried while the service is unreachable or answers 502-504. A 404 raises NotFound,
        another 4xx BadInput (with the service's message), anything else Upstream."""
        delay = self.backoff
        for attempt in range(self.attempts):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as error:
                if attempt == self.attempts - 1:
                    raise Upstream(
                        f"the {self.name} at {self.base_url} does not answer ({type(error).__name__})"
                    ) from None
            else:
                if response.status_code not in RETRY_STATUSES or attempt == self.attempts - 1:
                    return _checked(self.name, response)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def close(self) -> None:
        self.http.close()


def _checked(name: str, response: httpx.Response) -> httpx.Response:
    if response.status_code < 400:
        return response
    try:
        message = response.json().get("message", response.text)
    except ValueError:
        message = response.text[:200]
    if response.status_code == 404:
        raise NotFound(f"{name}: {message}")
    if response.status_code < 500:
        raise BadInput(f"{name} refused the request ({response.status_code}): {message}")
    raise Upstream(f"{name} failed ({response.status_code}): {message}")
