"""A real PostgreSQL server for tests: initdb in a temporary directory, pg_ctl start on a free port, as the
`postgres` user (PostgreSQL refuses to run as root). `make install` installs Debian's postgresql."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from opml.chain.anvil import free_port

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _tool(name: str) -> str:
    for directory in BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install Debian's postgresql (make install does)")
    return found


class PostgresServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="opml-postgres-"))

    @property
    def url(self) -> str:
        """The server's maintenance database; services get their own databases beside it."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, text=True)

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        data = self.directory / "data"
        self._as_postgres(_tool("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        )
        self._as_postgres(
            _tool("pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.directory / "log"), "-w", "start"
        )
        return self

    def stop(self) -> None:
        try:
            self._as_postgres(_tool("pg_ctl"), "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
