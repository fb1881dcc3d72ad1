"""Helpers shared by the CLI commands: errors a person can act on, JSON output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from ..errors import BadInput, OpmlError

console = Console(stderr=True)


class UserError(BadInput):
    """An error caused by the command's input; printed without a traceback."""


@contextmanager
def user_errors(*kinds: type[Exception]) -> Iterator[None]:
    """Turn the system's errors into a one-line message and the exit status of their kind (docs: 2 bad
    input, 3 not found, 4 conflict, 5 upstream, 6 unavailable); `kinds` are other types shown as bad input."""
    try:
        yield
    except OpmlError as error:
        console.print(f"[red]error:[/red] {_escape(error)}")
        raise typer.Exit(error.exit_status) from None
    except kinds as error:
        console.print(f"[red]error:[/red] {_escape(error)}")
        raise typer.Exit(2) from None


def _escape(error: Exception) -> str:
    from rich.markup import escape

    return escape(str(error))


def read_optional(path: Path | None) -> bytes:
    if path is None:
        return b""
    try:
        return path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}") from None


def print_json(data: dict) -> None:
    typer.echo(json.dumps(data, indent=2))


def hex0x(data: bytes) -> str:
    return "0x" + data.hex()
