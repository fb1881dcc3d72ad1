"""Refusals that HTTP has a more precise status for than their kind's (the app factory answers them in
the body every error has)."""

from __future__ import annotations

from opml.errors import BadInput, UnsupportedMediaType

__all__ = ["UnsupportedMediaType", "UploadTooLarge"]


class UploadTooLarge(BadInput):
    status = 413
