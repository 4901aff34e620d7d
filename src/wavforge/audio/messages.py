"""What the server and its converter children, and a converter and its decoding helpers, say
to each other over a pipe.

Both conversations are the same in kind: a job goes down, progress comes up, then one final
reply, a result or an error the receiving side rebuilds. Typing them once, here, keeps the two
from drifting apart and lets each side dispatch on classes that mypy checks instead of on
string tags and tuple positions.

Every message is pickled on its way through a pipe, so each is a frozen dataclass of picklable
fields and nothing else. This module must stay cheap to import (no numpy, no PyAV): it sits on
the path of every process that speaks it, and the parent side needs none of the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Generic, TypeAlias, TypeVar

from wavforge.audio.errors import (
    MEMORY_MESSAGE,
    UNEXPECTED_MESSAGE,
    AudioError,
    ConversionFailed,
    LimitExceeded,
    rebuild,
)

__all__ = [
    "EXIT_OUT_OF_MEMORY",
    "ConvertJob",
    "Done",
    "Failed",
    "Job",
    "PeaksJob",
    "ProbeJob",
    "ProgressReport",
    "Ready",
    "Reply",
    "progress_sender",
    "receive",
    "send",
]

T = TypeVar("T")

# A child that cannot even pickle a reply after a MemoryError exits with this code instead, so
# its parent still reports the memory limit rather than an anonymous death.
EXIT_OUT_OF_MEMORY = 86


@dataclass(frozen=True, slots=True)
class Ready:
    """The converter child has imported and warmed up everything and waits for jobs; until
    then the parent counts a start-up deadline, not a job's."""


@dataclass(frozen=True, slots=True)
class ProbeJob:
    """Describe ``src`` (``sources.probe``) in the child: opening a crafted container can cost
    as much memory as decoding it."""

    src: Path


@dataclass(frozen=True, slots=True)
class ConvertJob:
    """Convert ``src`` to ``dst`` with ``engine.convert(**engine_kwargs)`` in the child.

    The progress callback cannot cross the pipe, so only whether there is one does: the child
    sends progress reports only when somebody listens.
    """

    src: Path
    dst: Path
    wants_progress: bool
    engine_kwargs: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PeaksJob:
    """Measure the waveform peaks of ``src`` (``engine.measure_peaks``) in the child: a
    source is as untrusted at its peaks as at its conversion."""

    src: Path
    wants_progress: bool
    engine_kwargs: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ProgressReport:
    """How far the job has got, from 0 to 1; the sender throttles these."""

    fraction: float


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """The job's result: a ``ConversionResult``, an ``AudioInfo``, a ``Waveform`` or a
    decoded span."""

    result: T


@dataclass(frozen=True, slots=True)
class Failed:
    """The job raised. The error travels as a type and a message, never as the exception
    itself, whose traceback and arguments may carry server paths; ``retire`` asks the parent
    to replace a child whose interpreter is no longer trustworthy (after a MemoryError)."""

    error_type: type[AudioError]
    message: str
    retire: bool = False

    @classmethod
    def of(cls, error: BaseException) -> Failed:
        """The reply for ``error``: an ``AudioError`` as it is (its message is written to be
        shown), a ``MemoryError`` as the memory limit, anything else as a generic failure."""
        if isinstance(error, AudioError):
            return cls(type(error), str(error))
        if isinstance(error, MemoryError):
            return cls.out_of_memory()
        return cls(ConversionFailed, UNEXPECTED_MESSAGE)

    @classmethod
    def out_of_memory(cls, *, retire: bool = False) -> Failed:
        return cls(LimitExceeded, MEMORY_MESSAGE, retire)

    def error(self) -> AudioError:
        """The exception to raise on the receiving side (only ever an ``AudioError``, whatever
        arrived)."""
        return rebuild(self.error_type, self.message)


Job: TypeAlias = ProbeJob | ConvertJob | PeaksJob
Reply: TypeAlias = Ready | ProgressReport | Done[Any] | Failed
_REPLIES = (Ready, ProgressReport, Done, Failed)


def send(conn: Connection, message: Job | Reply) -> None:
    """``conn.send``, typed: only the messages above go through a pipe."""
    conn.send(message)


def receive(conn: Connection) -> Reply:
    """The next reply from a child. Anything else is a failure of the conversion, not a crash
    of the receiver. Raises ``EOFError`` or ``OSError`` as ``Connection.recv`` does."""
    message = conn.recv()
    if isinstance(message, _REPLIES):
        return message
    raise ConversionFailed(UNEXPECTED_MESSAGE)


def progress_sender(conn: Connection) -> Callable[[float], None]:
    """A progress callback for the engine that forwards each fraction up ``conn``."""

    def report(fraction: float) -> None:
        send(conn, ProgressReport(fraction))

    return report
