"""Typed settings, read once from ``WAVFORGE_*`` environment variables and passed in explicitly.

Nothing deeper in the package reads the environment: a process builds one :class:`Settings`
and hands it to the pieces it starts, so tests can run several differently configured
services side by side.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from wavforge import profiles
from wavforge.audio.options import RIFF_DATA_LIMIT, Limits
from wavforge.capacity import MAX_WORKER_THREADS, default_worker_threads

SCRATCH_MIN_IDLE_SECONDS = 3600.0  # a staged file younger than this is never swept

# Seconds to wait before each retry of a failed callback (CONTRACT §6), as "60,300,900".
RetrySchedule = Annotated[tuple[float, ...], NoDecode]

_LIMITS = Limits()  # the engine's defaults are the service's defaults


def default_data_dir() -> Path:
    """The platform's per-user data folder: ``~/.local/share/wavforge`` on Linux (or under
    ``$XDG_DATA_HOME``), ``~/Library/Application Support/wavforge`` on macOS, ``%LOCALAPPDATA%``
    on Windows. A folder relative to where a command runs would give ``wavforge keys create``,
    run from another terminal, a database of its own that the server never reads."""
    import platformdirs

    return Path(platformdirs.user_data_dir("wavforge", appauthor=False))


class Settings(BaseSettings):
    """Every operator-facing setting; the README's settings table is checked against this class."""

    model_config = SettingsConfigDict(env_prefix="WAVFORGE_", extra="ignore", frozen=True)

    data_dir: Path = Field(
        default_factory=lambda: default_data_dir(),
        description=(
            "Where the embedded database, queue and files live (default: the platform's "
            "per-user data folder, so every command finds the same service)."
        ),
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "Database: `postgresql://user:pass@host/db` (psycopg 3) or `sqlite:///path`; "
            "default: a SQLite file in the data dir."
        ),
    )
    redis_url: str | None = Field(
        default=None,
        description=(
            "Redis for the queue and the rate-limit counters, e.g. `redis://host:6379/0`; "
            "default: a SQLite queue in the data dir and counters in process memory."
        ),
    )
    queue_name: str = Field(
        default="wavforge",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Name of the queue; deployments sharing one Redis need different names.",
    )
    storage_url: str | None = Field(
        default=None,
        description=(
            "Where files are stored: `file:///dir` or `s3://bucket/prefix`; "
            "default: directory `files` in the data dir."
        ),
    )
    s3_endpoint_url: AnyHttpUrl | None = Field(
        default=None,
        description="S3 API endpoint for S3-compatible stores (MinIO, Ceph...); default: AWS.",
    )
    s3_region: str | None = Field(
        default=None, description="S3 region; default: from the AWS configuration."
    )
    public_url: AnyHttpUrl | None = Field(
        default=None,
        description="Base of every URL the API hands out; default `http://<host>:<port>`.",
    )
    host: str = Field(default="127.0.0.1", description="Address `wavforge serve` listens on.")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=8000, description="Port `wavforge serve` listens on."
    )
    api_processes: Annotated[int, Field(ge=1, le=64)] = Field(
        default=1,
        description=(
            "API processes of `wavforge serve`; more than one uses more cores, and then "
            "the worker runs in a process of its own."
        ),
    )
    secret_key: str | None = Field(
        default=None,
        min_length=32,
        description="HMAC key for download links; default: generated once into the database.",
    )
    retention_seconds: Annotated[int, Field(ge=1)] = Field(
        default=1_296_000, description="How long WAV files (and their links) are kept."
    )
    wav_cost: Annotated[int, Field(ge=0)] = Field(default=1, description="Credits per conversion.")
    rate_limit: str = Field(
        default="20/second",
        description="Per-key request rate, e.g. `20/second` or `600/minute` (430 beyond).",
    )
    profile: str = Field(
        default="sunoapi",
        description="Vendor profile of keys and accounts that name none, and of requests "
        "refused before their key is read: `sunoapi`, `kie`, `vidgo` or `poyo` (how errors "
        "are numbered; see docs/api.md).",
    )
    max_unfinished: Annotated[int, Field(ge=1)] = Field(
        default=100, description="Unfinished WAV tasks an account may have at once (405 beyond)."
    )
    purge_seconds: Annotated[float, Field(gt=0)] = Field(
        default=300.0, description="How often a worker deletes expired files."
    )
    callback_allow_private: bool = Field(
        default=False,
        description="Allow loopback/private callback and import URLs (development only).",
    )
    callback_timeout: Annotated[float, Field(gt=0, le=60)] = Field(
        default=15.0,
        description="Seconds a callback attempt may take in all: lookup, connection, answer.",
    )
    callback_threads: Annotated[int, Field(ge=1, le=256)] = Field(
        default=8,
        description="Callbacks a worker sends at once, beside (never in) its conversion threads.",
    )
    callback_retry_suno: RetrySchedule = Field(
        default=(60.0, 300.0, 900.0),
        description="Delays before retrying a Suno-dialect callback, comma-separated seconds.",
    )
    callback_retry_unified: RetrySchedule = Field(
        default=(1.0, 2.0, 4.0),
        description="Delays before retrying a unified-dialect callback, comma-separated seconds.",
    )
    source_retention_seconds: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="Delete imported tracks (source and WAVs) this long after import "
        "(empty: keep them until their owner deletes them).",
    )
    header_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = Field(
        default=10.0,
        description="Seconds a client has to send a request's line and headers; then the "
        "connection is closed (a client sending a byte at a time cannot hold it).",
    )
    import_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=300.0,
        description="Longest a URL import may take to fetch one file, start to last byte.",
    )
    import_fetches: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=64,
        description="URL fetches one API process runs at once (430 when all stay busy 5 s).",
    )
    max_upload_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=512 * 1024 * 1024, description="Largest accepted upload or imported file (413)."
    )
    worker_threads: Annotated[int, Field(ge=1, le=MAX_WORKER_THREADS)] = Field(
        default_factory=lambda: default_worker_threads(),
        description=(
            "Conversions a worker process runs at once, each in a converter process of its own "
            "(default: two per CPU this process may use, cgroup quota included; at most 64)."
        ),
    )
    lease_seconds: Annotated[float, Field(gt=0)] = Field(
        default=60.0,
        description="How long a worker's claim on a task lasts without renewal.",
    )
    sweep_seconds: Annotated[float, Field(gt=0)] = Field(
        default=15.0,
        description="How often a worker looks for lost tasks (expired leases, never queued).",
    )
    max_attempts: Annotated[int, Field(ge=1)] = Field(
        default=3,
        description=(
            "Conversion attempts before a task is failed for good (and runs of a source's "
            "peaks job before it is given up)."
        ),
    )
    max_duration_seconds: Annotated[float, Field(gt=0)] = Field(
        default=_LIMITS.max_duration_seconds,
        description="Longest source accepted for conversion, in seconds.",
    )
    max_output_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=_LIMITS.max_output_bytes,
        description="Largest WAV a conversion may write, in bytes.",
    )
    rf64_threshold_bytes: Annotated[int, Field(ge=1, le=RIFF_DATA_LIMIT)] = Field(
        default=_LIMITS.rf64_threshold_bytes,
        description="Sample data beyond this many bytes is written as RF64 (default: ~4 GiB).",
    )
    decode_processes: Annotated[int, Field(ge=1, le=64)] = Field(
        default=_LIMITS.parallelism,
        description="Processes that may decode one long MP3 in parallel.",
    )
    measure_loudness: bool = Field(
        default=False,
        description=(
            "Measure loudness, loudness range and true peak in every conversion, not only "
            'those that ask ("loudness": true, or the distribution preset). It costs about '
            "three times the decoding of an MP3 (FFmpeg's ebur128 with true peak), so a "
            "service that measures everything converts about a quarter as many tracks."
        ),
    )
    measure_source_peaks: bool = Field(
        default=True,
        description=(
            "Measure each imported source's waveform peaks in the background, for players "
            "(a whole decode per import, in a worker; false: sources have none)."
        ),
    )
    convert_memory_bytes: Annotated[int, Field(ge=64 * 1024**2)] | None = Field(
        default=1024**3,
        description="Address-space limit of each conversion process (empty: no limit).",
    )
    convert_cpu_seconds: Annotated[float, Field(gt=0)] | None = Field(
        default=600.0, description="CPU time one conversion may use (empty: no limit)."
    )
    convert_timeout_seconds: Annotated[float, Field(gt=0)] | None = Field(
        default=900.0, description="Wall time after which a conversion is killed (empty: none)."
    )
    shutdown_grace_seconds: Annotated[float, Field(ge=0)] = Field(
        default=30.0,
        description="On SIGTERM, how long running conversions may finish before being handed back.",
    )
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description=(
            "Log lines as JSON objects, one per line (`json`), or `text` for a person; `auto`: "
            "text when the log goes to a terminal, JSON otherwise."
        ),
    )
    access_log: bool = Field(
        default=True,
        description="One log line per HTTP request: method, path, status, milliseconds, key id.",
    )
    metrics_token: Annotated[SecretStr, Field(min_length=16)] | None = Field(
        default=None,
        description=(
            "Bearer token `/metrics` requires (16+ characters); unset: `/metrics` is open, "
            "so keep it off the public proxy."
        ),
    )
    metrics_port: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        default=None,
        description="Port `wavforge worker` serves its metrics on (at `WAVFORGE_HOST`).",
    )

    @field_validator(
        "metrics_token",
        "metrics_port",
        "convert_memory_bytes",
        "convert_cpu_seconds",
        "convert_timeout_seconds",
        "source_retention_seconds",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``WAVFORGE_METRICS_TOKEN=`` in an environment file means no token, not a bad one;
        ``WAVFORGE_CONVERT_CPU_SECONDS=`` means no limit, as documented."""
        return None if value == "" else value

    @field_validator("callback_retry_suno", "callback_retry_unified", mode="before")
    @classmethod
    def _seconds_list(cls, value: object) -> object:
        """``"60,300,900"`` from the environment; an empty string means no retries."""
        if isinstance(value, str):
            return tuple(float(part) for part in value.split(",") if part.strip())
        return value

    @field_validator("callback_retry_suno", "callback_retry_unified")
    @classmethod
    def _non_negative(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay < 0 or delay > 86_400 for delay in value):
            raise ValueError("retry delays must be between 0 and 86400 seconds")
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError("expected a rate such as '20/second' or '600/minute'") from None
        return value

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str) -> str:
        return profiles.check(value)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.partition("://")[0]
        if scheme in ("postgresql", "postgres"):
            # psycopg 3 is the driver; SQLAlchemy would otherwise pick psycopg2.
            return "postgresql+psycopg://" + value.partition("://")[2]
        if scheme not in ("postgresql+psycopg", "sqlite"):
            raise ValueError("expected a postgresql:// or sqlite:/// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://")):
            raise ValueError("expected a redis:// or rediss:// URL")
        return value

    @field_validator("storage_url")
    @classmethod
    def _storage(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith("s3://"):
            if not value.removeprefix("s3://").split("/")[0]:
                raise ValueError("expected s3://bucket or s3://bucket/prefix")
            return value.rstrip("/")
        if not value.startswith("file://"):
            raise ValueError("expected a file:// or s3:// URL")
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'wavforge.db'}"

    @cached_property
    def sqlite_path(self) -> Path | None:
        """The SQLite file of the embedded mode; None for a database server."""
        url = self.resolved_database_url
        return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None

    @property
    def uses_s3(self) -> bool:
        return bool(self.storage_url and self.storage_url.startswith("s3://"))

    @cached_property
    def storage_dir(self) -> Path:
        """The local storage root (meaningless when files live in S3)."""
        if self.storage_url and self.storage_url.startswith("file://"):
            return Path(self.storage_url.removeprefix("file://")).expanduser().resolve()
        return self.data_dir / "files"

    @cached_property
    def s3_location(self) -> tuple[str, str]:
        """``(bucket, prefix)`` of an ``s3://bucket/prefix`` storage URL."""
        bucket, _, prefix = (self.storage_url or "").removeprefix("s3://").partition("/")
        return bucket, prefix.strip("/")

    @cached_property
    def queue_path(self) -> Path:
        return self.data_dir / "queue.db"

    @property
    def rate_limit_storage(self) -> str:
        """Where the rate-limit counters live: Redis when there is one, else this process."""
        return self.redis_url or "memory://"

    @cached_property
    def scratch_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def scratch_idle_seconds(self) -> float:
        """How long a staged file may sit unwritten before the sweep deletes it: longer than
        any import or conversion may legitimately leave it so."""
        longest = max(self.import_timeout_seconds, self.convert_timeout_seconds or 0.0)
        return max(SCRATCH_MIN_IDLE_SECONDS, 2 * longest)

    @cached_property
    def base_url(self) -> str:
        if self.public_url:
            return str(self.public_url).rstrip("/")
        return f"http://{self.host}:{self.port}"

    def audio_limits(self) -> Limits:
        """The limits every conversion runs under, in the service and in `convert-file`."""
        return Limits(
            max_duration_seconds=self.max_duration_seconds,
            max_output_bytes=self.max_output_bytes,
            rf64_threshold_bytes=self.rf64_threshold_bytes,
            parallelism=self.decode_processes,
        )
