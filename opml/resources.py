"""Where the files the system needs live: guest programs, the default model, the contracts.

They sit beside the package in a source checkout. An installed package or a container
points at them with $OPML_ROOT (the Dockerfiles copy them to /app and set it). Every
other module asks here instead of computing paths from its own location.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import Unavailable

ROOT_VARIABLE = "OPML_ROOT"
_MARKER = Path("guest") / "build"


def root() -> Path:
    """The directory holding guest/, models/ and contracts/: $OPML_ROOT, else the source checkout."""
    configured = os.environ.get(ROOT_VARIABLE)
    if configured:
        return Path(configured)
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / _MARKER).is_dir():
        return checkout
    raise Unavailable(f"cannot find the OPML resources: set ${ROOT_VARIABLE} to the directory holding guest/build")


def guest_dir() -> Path:
    return root() / "guest"


def guest_build_dir() -> Path:
    return guest_dir() / "build"


def models_dir() -> Path:
    return root() / "models"


def seed_model_dir() -> Path:
    """The default model: the seed's MNIST MLP, its state_dict and sample inputs."""
    return models_dir() / "seed-mnist"


def contracts_dir() -> Path:
    return root() / "contracts"


def artifacts_dir() -> Path:
    """forge's build output (contracts/out), or $OPML_ARTIFACTS."""
    configured = os.environ.get("OPML_ARTIFACTS")
    return Path(configured) if configured else contracts_dir() / "out"


def node_bin_dir() -> Path:
    """The pinned npm tools (anvil, forge, cast)."""
    return root() / "node_modules" / ".bin"
