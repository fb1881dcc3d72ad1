"""Helpers shared by the CLI commands: errors a person can act on, JSON output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)


class UserError(Exception):
    """An error caused by the command's input; printed without a traceback."""


@contextmanager
def user_errors(*kinds: type[Exception]) -> Iterator[None]:
    """Turn the given exception types into a one-line error and exit status 2."""
    try:
        yield
    except (UserError, *kinds) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None


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
