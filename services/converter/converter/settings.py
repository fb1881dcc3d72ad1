"""The converter's settings, from CONVERTER_* environment variables only (the same names in the
launcher and in docker compose)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from opml.service.settings import ServiceSettings

PRIVATE_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


class ConverterSettings(ServiceSettings):
    # hide_input_in_errors: a mistyped private key must not end up in a log
    model_config = SettingsConfigDict(env_prefix="CONVERTER_", extra="ignore", hide_input_in_errors=True)

    port: int = 8001
    # Holds the database (unless database_url points elsewhere) and the model store.
    data_dir: Path = Path("var/converter")
    # SQLAlchemy URL, postgresql:// or a SQLite path; default: a SQLite file in data_dir.
    database_url: str = ""
    # Model files, content-addressed by their root M; default: data_dir/models. Replicas may share it.
    store_dir: Path | None = None
    # The largest upload accepted (a model file, a state_dict or an ONNX model).
    max_upload_bytes: int = 256 << 20
    # Where clients reach this service: a model's file URL, and the uri registered on-chain.
    public_url: str = "http://127.0.0.1:8001"
    # On-chain registration (registerModel) needs all three; without them uploads still work.
    rpc_url: str | None = None
    deployment_path: Path | None = None
    private_key: SecretStr | None = None

    @field_validator("rpc_url", "deployment_path", "private_key", mode="before")
    @classmethod
    def empty_means_none(cls, value):
        return value or None

    @field_validator("private_key")
    @classmethod
    def key_is_32_bytes_of_hex(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not PRIVATE_KEY.match(value.get_secret_value()):
            raise ValueError("the private key must be 32 bytes of hex")
        return value

    @model_validator(mode="after")
    def derived_defaults(self) -> ConverterSettings:
        if self.max_upload_bytes <= 0:
            raise ValueError("max_upload_bytes must be positive")
        if not self.database_url:
            self.database_url = str(self.data_dir / "converter.db")
        if self.store_dir is None:
            self.store_dir = self.data_dir / "models"
        self.public_url = self.public_url.rstrip("/")
        return self

    @property
    def missing_for_registration(self) -> list[str]:
        """The CONVERTER_* variables registration needs that are not set."""
        wanted = {"CONVERTER_RPC_URL": self.rpc_url, "CONVERTER_DEPLOYMENT_PATH": self.deployment_path,
                  "CONVERTER_PRIVATE_KEY": self.private_key}  # fmt: skip
        return [name for name, value in wanted.items() if value is None]
