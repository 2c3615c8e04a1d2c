"""Typed configuration: every setting is an environment variable with the HAPPYSAD_ prefix.

Read once per process through `get_settings()`, never at import time, so a Celery worker that
forks gets its own copy and tests can change the environment between cases.
"""

import functools
import os
from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from db.errors import SettingsError


class InferenceEngine(StrEnum):
    """The runtime workers run a model in (worker.engine): auto takes the fastest here of those
    that give TensorFlow's answers."""

    AUTO = "auto"
    TENSORFLOW = "tensorflow"
    OPENVINO = "openvino"


# The layout of HAPPYSAD_HOME, named once: every module asks the settings for its folder.
HOME_LAYOUT = {
    "database": "happysad.db",  # SQLite, when HAPPYSAD_DATABASE_URL is not set
    "models": "models",  # model versions, when HAPPYSAD_MODEL_STORE is not set
    "jobs": "jobs",  # job reports, when HAPPYSAD_REPORT_STORE is not set
    "queue": "queue",  # the embedded queue (kombu's filesystem transport)
    "run": "run",  # pid files of local workers, lock files, beat's schedule
    "cache": "cache",  # local copies of model files kept in a bucket
    "tensorboard": "tensorboard",  # training logs
    "logs": "logs",  # logs of workers started for a command
    "demo": "demo",  # `happysad demo`'s images
}

# Larger images are refused from their header, before any pixel is decoded (decompression bombs).
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000


# A shorter HAPPYSAD_API_TOKEN is refused: it guards every read beyond loopback, and writes.
MIN_TOKEN_LENGTH = 16

SECRET_SETTINGS = {"api_token"}  # never printed, even when refused

# Images per labelling task, at most: one message and one transaction per batch must stay small
# (a batch is one SQL insert and is redone whole if its worker dies).
MAX_BATCH_SIZE = 4096


def default_home() -> Path:
    """Where everything lives when nothing is configured: one folder per user, the same wherever
    a command runs (the XDG data folder: $XDG_DATA_HOME/happysad, or ~/.local/share/happysad).
    Never the working directory: from another folder a command would find an empty home."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "happysad"  # a relative XDG_DATA_HOME is ignored, as the XDG spec says


def default_cache_dir() -> Path:
    """What can be made again, kept between processes and shared by every home of the user's:
    $XDG_CACHE_HOME/happysad, or ~/.cache/happysad."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if Path(xdg).is_absolute() else Path.home() / ".cache") / "happysad"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HAPPYSAD_", env_file=".env", extra="ignore")

    home: Path = Field(default_factory=default_home)
    cache_dir: Path = Field(default_factory=default_cache_dir)
    database_url: str | None = None
    broker_url: str | None = None
    model_store: str | None = None
    report_store: str | None = None
    s3_endpoint_url: str | None = None

    batch_size: int = Field(default=64, ge=1, le=MAX_BATCH_SIZE)
    worker_concurrency: int = Field(default=0, ge=0)
    inference_threads: int = Field(default=0, ge=0)
    engine: InferenceEngine = InferenceEngine.AUTO
    max_image_pixels: int = Field(default=DEFAULT_MAX_IMAGE_PIXELS, ge=1)
    task_max_retries: int = Field(default=3, ge=0)
    visibility_timeout: int = Field(default=3600, ge=10)
    resend_after: int = Field(default=120, ge=1)
    reconcile_interval: int = Field(default=5, ge=1)
    listing_deadline: int = Field(default=10, ge=1)

    retrain_cron: str = "0 2 * * *"
    timezone: str = "UTC"
    train_data: str | None = None
    promotion_metric: str = "accuracy"
    promotion_margin: float = 0.0

    log_level: str = "INFO"
    debug: bool = False

    api_token: SecretStr | None = None
    public_reads: bool = False
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    allowed_sources: str | None = None

    @field_validator("home", mode="before")
    @classmethod
    def _home_or_default(cls, home):
        return home if home not in (None, "") else default_home()  # empty means not set

    @field_validator("cache_dir", mode="before")
    @classmethod
    def _cache_or_default(cls, folder):
        return folder if folder not in (None, "") else default_cache_dir()

    @field_validator("home", "cache_dir")
    @classmethod
    def _absolute_home(cls, folder: Path) -> Path:
        return folder.expanduser().resolve()

    @field_validator("api_token")
    @classmethod
    def _long_token(cls, token: SecretStr | None) -> SecretStr | None:
        value = token.get_secret_value() if token else ""
        if value and len(value) < MIN_TOKEN_LENGTH:  # empty means not set
            raise ValueError(f"must be at least {MIN_TOKEN_LENGTH} characters (make one: python3 "
                             "-c 'import secrets; print(secrets.token_urlsafe(24))')")
        return token

    @field_validator("promotion_metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric not in {"accuracy", "precision", "recall", "f1"}:
            raise ValueError("must be one of accuracy, precision, recall, f1")
        return metric

    @field_validator("retrain_cron")
    @classmethod
    def _five_fields(cls, cron: str) -> str:
        if len(cron.split()) != 5:
            raise ValueError("needs five fields: minute hour day-of-month month day-of-week")
        return cron

    def home_folder(self, name: str) -> Path:
        """A folder of HAPPYSAD_HOME by its name in HOME_LAYOUT (not created here)."""
        return self.home / HOME_LAYOUT[name]

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_folder('database')}"

    @property
    def embedded_broker(self) -> bool:
        """True when no broker server is configured: the queue lives in files under home."""
        return not self.broker_url

    @property
    def effective_model_store(self) -> str:
        return self.model_store or str(self.home_folder("models"))

    @property
    def effective_report_store(self) -> str:
        return self.report_store or str(self.home_folder("jobs"))

    @property
    def queue_folder(self) -> Path:
        return self.home_folder("queue")

    @property
    def allowed_source_roots(self) -> list[str]:
        """Where the web app may send workers to read: HAPPYSAD_ALLOWED_SOURCES, comma-separated
        folders and s3://bucket/prefix roots; by default HAPPYSAD_HOME and nothing else."""
        roots = [root.strip() for root in (self.allowed_sources or "").split(",")]
        return [root for root in roots if root] or [str(self.home)]

    @property
    def api_token_value(self) -> str | None:
        token = self.api_token.get_secret_value() if self.api_token else ""
        return token or None

    def concurrency(self) -> int:
        """Worker processes per machine: one per core unless told otherwise."""
        return self.worker_concurrency or max(1, os.cpu_count() or 1)

    def threads_per_process(self, processes: int = 1) -> int:
        """TensorFlow threads for each of a worker's processes: HAPPYSAD_INFERENCE_THREADS, or
        the cores shared out among the processes."""
        return self.inference_threads or max(1, (os.cpu_count() or 1) // max(1, processes))


@functools.cache
def get_settings() -> Settings:
    """The settings, validated; a bad HAPPYSAD_* value is a SettingsError naming it."""
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError("; ".join(
            f"invalid HAPPYSAD_{'_'.join(map(str, item['loc'])).upper()}="
            f"{'(hidden)' if item['loc'][0] in SECRET_SETTINGS else repr(item.get('input'))}: "
            f"{item['msg'].removeprefix('Value error, ')}" for item in error.errors())) from None


def reset_settings() -> None:
    """Forget the cached settings (tests, and processes that change the environment)."""
    get_settings.cache_clear()


def mask_url(url: str | None) -> str | None:
    """Hide the password in a URL before it reaches a log, the database or the screen."""
    if not url or "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    if ":" in credentials:
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
