"""One error base for the whole system, with a kind that says whose problem it is.

The CLI maps the kind to an exit status and every service to an HTTP status, so an
error raised deep in the library reaches a person or a client with the right meaning
and without a traceback:

    raise BadInput("input is 785 bytes; the seed model takes 784")
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    BAD_INPUT = "bad_input"  # the caller's input is wrong: fix it and retry
    NOT_FOUND = "not_found"  # no such thing
    CONFLICT = "conflict"  # the thing exists, or is in the wrong state for this
    UPSTREAM = "upstream"  # a dependency (the chain, another service) failed or refused
    UNAVAILABLE = "unavailable"  # not ready yet: retry later
    INTERNAL = "internal"  # a bug


HTTP_STATUS = {
    ErrorKind.BAD_INPUT: 422,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.UPSTREAM: 502,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.INTERNAL: 500,
}

EXIT_STATUS = {
    ErrorKind.BAD_INPUT: 2,
    ErrorKind.NOT_FOUND: 3,
    ErrorKind.CONFLICT: 4,
    ErrorKind.UPSTREAM: 5,
    ErrorKind.UNAVAILABLE: 6,
    ErrorKind.INTERNAL: 1,
}


class OpmlError(Exception):
    """Base of every error the system raises on purpose."""

    kind: ErrorKind = ErrorKind.INTERNAL
    status: int | None = None  # an HTTP status more precise than the kind's (413, 415), for a subclass

    def __init__(self, message: str, *, kind: ErrorKind | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind
        self.details = details or {}

    @property
    def http_status(self) -> int:
        return self.status or HTTP_STATUS[self.kind]

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.kind.value,
            "message": self.message,
            **({"details": self.details} if self.details else {}),
        }


class BadInput(OpmlError, ValueError):
    kind = ErrorKind.BAD_INPUT


class UnsupportedMediaType(BadInput):
    """A body in a format the route does not read (form data where JSON is expected, or the reverse)."""

    status = 415


class NotFound(OpmlError, LookupError):
    kind = ErrorKind.NOT_FOUND


class Conflict(OpmlError):
    kind = ErrorKind.CONFLICT


class Upstream(OpmlError):
    kind = ErrorKind.UPSTREAM


class Unavailable(OpmlError):
    kind = ErrorKind.UNAVAILABLE
