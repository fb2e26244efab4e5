"""Runtime configuration: one validated settings object read from ``MCGIP_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from server.auth.client import IPNetwork, parse_trusted_proxies

#: The shipped secret. Fine for a laptop demo, refused in production mode.
DEFAULT_SECRET_KEY = "mcgip-insecure-development-secret-change-me"


class Settings(BaseSettings):
    """Everything the server, worker and CLI can be configured with.

    Only ``MCGIP_DATABASE_URL``, ``MCGIP_DATA_DIR`` and ``MCGIP_SECRET_KEY`` are part of the
    deployment contract; everything else has a safe default.
    """

    model_config = SettingsConfigDict(env_prefix="MCGIP_", extra="ignore")

    mode: Literal["development", "production"] = "development"
    data_dir: Path = Path("./var")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; defaults to a SQLite file inside data_dir."
    )
    secret_key: str = DEFAULT_SECRET_KEY
    deid_salt: str | None = Field(
        default=None, description="Key for DICOM UID remapping; derived from secret_key when unset."
    )

    host: str = "127.0.0.1"
    port: int = 8000
    #: Extra origins allowed to open the gaze WebSocket besides the server's own origin.
    allowed_origins: list[str] = Field(default_factory=list)

    max_upload_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(default=64_000_000, gt=0)
    #: Bulk upload (``POST /api/cases/bulk``): files per request (zip entries included) at most. A
    #: request carries at most 1,000 form files (a browser folder); more files travel in a zip.
    bulk_max_files: int = Field(default=5000, gt=0, le=100_000)
    #: Bulk upload: bytes of all files together at most, counted uncompressed for zip entries.
    bulk_max_total_bytes: int = Field(default=4 * 1024**3, gt=0)
    #: Predictions run in this many workers at once (processes unless ``predict_processes`` is off).
    predict_workers: int = Field(default=2, gt=0, le=64)
    #: Workers are separate processes (their own GIL, every thread of them ``predict_nice`` lower),
    #: so decoding and preprocessing never make the event loop wait; off = threads of the web process.
    predict_processes: bool = True
    #: onnxruntime threads per session in a worker process (workers x threads ~ cores).
    predict_threads: int = Field(default=1, gt=0, le=64)
    #: Predictions waiting or running at most; beyond it the API answers 503 with Retry-After.
    predict_queue: int = Field(default=32, gt=0, le=10_000)
    #: Images per predict request at most (case ids or uploaded files).
    predict_max_batch: int = Field(default=16, gt=0, le=256)
    #: Preprocessed case inputs kept in memory (MiB; 0 = off), keyed on content hash and spec.
    predict_cache_mb: int = Field(default=64, ge=0, le=65_536)
    #: Images per onnxruntime run at most when concurrent predictions of one model are combined
    #: (thread workers only; 1 = every request runs alone).
    predict_micro_batch: int = Field(default=16, gt=0, le=256)
    #: Nice value added to prediction workers (Linux, every thread; 0 = same priority as the rest),
    #: so gaze ingest and the event loop get the CPU first when predictions saturate it.
    predict_nice: int = Field(default=19, ge=0, le=19)

    access_token_ttl_s: int = Field(default=12 * 3600, gt=0)
    session_cookie_ttl_s: int = Field(default=12 * 3600, gt=0)
    login_attempts: int = Field(
        default=10, gt=0, description="Failed logins allowed per account and client inside the window."
    )
    login_window_s: int = Field(default=300, gt=0)
    #: Reverse proxies (addresses or CIDR networks, comma-separated in the environment) whose
    #: ``X-Forwarded-For`` names the client; from anyone else the header is ignored.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    demo_admin_password: str | None = None
    demo_reader_password: str | None = None

    log_level: str = "INFO"

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            parse_trusted_proxies([str(v) for v in value])  # refuse a bad entry at start-up
        return value

    #: DICOMweb base URL of the PACS (e.g. ``http://orthanc:8042/dicom-web``); credentials below are sent
    #: only to URLs under it (or to any URL when it is unset).
    pacs_url: str | None = None
    pacs_username: str | None = None
    pacs_password: SecretStr | None = None
    #: Bearer token instead of a username and password.
    pacs_token: SecretStr | None = None
    pacs_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("pacs_url", "pacs_username", "pacs_password", "pacs_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # docker-compose passes unset variables as empty strings.
        return None if value == "" else value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.mode == "production":
            if self.secret_key == DEFAULT_SECRET_KEY:
                raise ValueError(
                    "MCGIP_SECRET_KEY is the shipped default; set a long random secret in production mode"
                )
            if len(self.secret_key) < 32:
                raise ValueError("MCGIP_SECRET_KEY must be at least 32 characters in production mode")
        if self.pacs_token is not None and self.pacs_password is not None:
            raise ValueError("set either MCGIP_PACS_TOKEN or MCGIP_PACS_USERNAME/PASSWORD, not both")
        if (self.pacs_username is None) != (self.pacs_password is None):
            raise ValueError("MCGIP_PACS_USERNAME and MCGIP_PACS_PASSWORD must be set together")
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``sqlite:///<data_dir>/mcgip.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mcgip.db').resolve()}"

    @property
    def uid_salt(self) -> bytes:
        """Key used to remap DICOM UIDs consistently during de-identification."""
        return (self.deid_salt or f"deid:{self.secret_key}").encode()

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        return parse_trusted_proxies(self.trusted_proxies)

    @property
    def blob_dir(self) -> Path:
        """Where images, checkpoints and exports live."""
        return self.data_dir / "blobs"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once from the environment (CLI and server entry points)."""
    return Settings()
