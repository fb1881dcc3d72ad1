"""Runs shared between vm-worker replicas: a directory (a volume every replica mounts) where the replica
that ran an execution leaves its progress while it runs and its saved run when it ends.

    <root>/<execution id>.progress.json   {"steps": n} while running, {"error": "..."} if it failed
    <root>/<execution id>.run.npz         the saved run (opml.vm.execution.SavedRun)

Every file is written to a temporary name and renamed into place, so a reader sees a whole file or
none; a saved run is written once and never changes (an execution's run is determined by its content).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from opml.vm.execution import SavedRun

_BYTES_FIELDS = ("initial_state_hash", "stdout", "stderr")
_SCALAR_FIELDS = ("boot_pages", "snapshot_interval", "exited")


@dataclass(frozen=True)
class Progress:
    steps: int = 0
    error: str | None = None


class RunStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def has_run(self, execution_id: bytes) -> bool:
        return self._run_path(execution_id).exists()

    def save_run(self, execution_id: bytes, saved: SavedRun) -> None:
        arrays = {}
        for field in fields(SavedRun):
            value = getattr(saved, field.name)
            if field.name in _BYTES_FIELDS:
                value = np.frombuffer(value, dtype=np.uint8)
            arrays[field.name] = np.asarray(value)
        self._replace(self._run_path(execution_id), lambda file: np.savez(file, **arrays))
        self._progress_path(execution_id).unlink(missing_ok=True)

    def load_run(self, execution_id: bytes) -> SavedRun:
        with np.load(self._run_path(execution_id)) as archive:
            values = {}
            for field in fields(SavedRun):
                value = archive[field.name]
                if field.name in _BYTES_FIELDS:
                    value = value.tobytes()
                elif field.name in _SCALAR_FIELDS:
                    value = value.item()
                values[field.name] = value
        return SavedRun(**values)

    def report_progress(self, execution_id: bytes, steps: int) -> None:
        self._write_progress(execution_id, Progress(steps=steps))

    def report_failure(self, execution_id: bytes, error: str) -> None:
        self._write_progress(execution_id, Progress(error=error))

    def progress(self, execution_id: bytes) -> Progress | None:
        """What the replica running the execution last reported; None if none has started it."""
        try:
            return Progress(**json.loads(self._progress_path(execution_id).read_text()))
        except FileNotFoundError:
            return None

    def forget_failure(self, execution_id: bytes) -> None:
        """Clear a failure report, so the execution may be run again."""
        progress = self.progress(execution_id)
        if progress is not None and progress.error is not None:
            self._progress_path(execution_id).unlink(missing_ok=True)

    # --- files --------------------------------------------------------------------------------------

    def _write_progress(self, execution_id: bytes, progress: Progress) -> None:
        text = json.dumps({"steps": progress.steps, "error": progress.error})
        self._replace(self._progress_path(execution_id), lambda file: file.write(text.encode()))

    def _run_path(self, execution_id: bytes) -> Path:
        return self.root / f"{execution_id.hex()}.run.npz"

    def _progress_path(self, execution_id: bytes) -> Path:
        return self.root / f"{execution_id.hex()}.progress.json"

    def _replace(self, target: Path, write) -> None:
        descriptor, temporary = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(descriptor, "wb") as file:
                write(file)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
