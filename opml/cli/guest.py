"""`opml guest`: build the MIPS guest programs."""

from __future__ import annotations

from pathlib import Path

import typer

from ..guest import BuildError, build_all
from .common import console, user_errors

app = typer.Typer(help="Build the guest programs that run inside the VM.", no_args_is_help=True)


@app.command()
def build(out: Path = typer.Option(None, help="Directory for the built ELF files (default: guest/build).")) -> None:
    """Rebuild every guest program with the pinned zig toolchain."""
    with user_errors(BuildError):
        for path in build_all(out):
            console.print(f"built {path}")
