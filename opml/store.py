"""A content-addressed blob store on the filesystem: a blob's name is its key (a hash, hex), and a blob
is written to a temporary file and renamed into place, so a reader never sees half a blob and a crash
leaves nothing half-written behind.

The converter keeps model files here (keyed by model root M); the vm-worker keeps inputs and
fetched models (so any replica sharing the directory can recompute any execution).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import BadInput, NotFound

_KEY = re.compile(r"^[0-9a-f]{64}$")


class BlobStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise BadInput(f"not a blob key (64 hex digits): {key[:80]!r}")
        return self.root / key[:2] / key

    def __contains__(self, key: str) -> bool:
        return self.path(key).exists()

    def put(self, key: str, data: bytes) -> Path:
        return self.put_chunks(key, [data])

    def put_chunks(self, key: str, chunks: Iterable[bytes]) -> Path:
        """Write the blob from chunks; replaces nothing if it is already there."""
        target = self.path(key)
        if target.exists():
            for _ in chunks:  # drain the iterator so a streaming source is consumed either way
                pass
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(descriptor, "wb") as file:
                for chunk in chunks:
                    file.write(chunk)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no blob {key}") from None

    def stream(self, key: str, chunk_bytes: int = 1 << 16) -> Iterator[bytes]:
        path = self.path(key)
        if not path.exists():
            raise NotFound(f"no blob {key}")
        with path.open("rb") as file:
            while chunk := file.read(chunk_bytes):
                yield chunk

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"no blob {key}") from None

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def clean_incoming(self) -> int:
        """Remove temporary files a crash left behind; returns how many."""
        leftovers = list(self.root.glob("*/.incoming-*"))
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)
