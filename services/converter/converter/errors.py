"""Refusals that HTTP has a more precise status for than their kind's (the app factory answers them in
the body every error has)."""

from __future__ import annotations

from opml.errors import BadInput


class UploadTooLarge(BadInput):
    status = 413


class UnsupportedMediaType(BadInput):
    status = 415
