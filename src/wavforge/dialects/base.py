"""What a dialect is: one object that knows everything one vendor family's wire looks like.

A dialect owns its path prefixes, its envelopes (success and error), its status words and
time format, the callback body of the tasks it created, its retry schedule, and the models
that describe all of that in the OpenAPI schema. Everything else reads those from here —
the error translator picks the dialect of a path, a delivery the dialect of its task — so
adding a dialect means one module plus its routes, and registering it in
``wavforge.dialects``.

A dialect module translates only: no SQL, no HTTP client, no metrics, no business rule.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from wavforge.core.states import WavStatus
from wavforge.errors import WavforgeError

if TYPE_CHECKING:
    from wavforge.config import Settings
    from wavforge.core.records import WavRecord


class Dialect(ABC):
    """One wire dialect. Subclasses set the class attributes and the rendering methods."""

    name: ClassVar[str]
    """Stored on each task, so its callbacks speak the dialect that created it."""
    prefixes: ClassVar[tuple[str, ...]]
    """Paths whose answers (errors included) use this dialect's envelope."""
    time_format: ClassVar[str]
    status_words: ClassVar[dict[WavStatus, str]]

    # The OpenAPI schema: success envelope (generic in ``data``), error and 409 envelopes.
    answer_model: ClassVar[Any]
    error_model: ClassVar[type[BaseModel]]
    conflict_model: ClassVar[type[BaseModel]]

    def owns(self, path: str) -> bool:
        return path.startswith(self.prefixes)

    def time(self, value: datetime | None) -> str | None:
        return value.strftime(self.time_format) if value else None

    def status_word(self, status: WavStatus) -> str:
        return self.status_words[status]

    @abstractmethod
    def success(self, data: Any) -> dict[str, Any]:
        """The envelope of a successful answer around ``data``."""

    @abstractmethod
    def error(self, error: WavforgeError, code: int) -> dict[str, Any]:
        """The envelope of an error answer; ``code`` is the number the caller's vendor
        profile gives the error (see ``wavforge.profiles``)."""

    @abstractmethod
    def callback_body(self, record: WavRecord) -> dict[str, Any]:
        """What is POSTed to the callback URL when a task of this dialect ends."""

    @abstractmethod
    def retry_schedule(self, settings: Settings) -> tuple[float, ...]:
        """Delays before each retry of a failed callback of this dialect."""

    def __repr__(self) -> str:
        return f"<dialect {self.name}>"
