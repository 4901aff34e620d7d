"""The messages between a parent and its converter or decoding children, through a real pipe."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from wavforge.audio.errors import (
    MEMORY_MESSAGE,
    UNEXPECTED_MESSAGE,
    ConversionFailed,
    LimitExceeded,
    UnsupportedAudio,
)
from wavforge.audio.messages import (
    ConvertJob,
    Done,
    Failed,
    Job,
    PeaksJob,
    ProbeJob,
    ProgressReport,
    Ready,
    Reply,
    progress_sender,
    receive,
    send,
)
from wavforge.audio.options import Limits


@pytest.fixture
def pipe() -> Iterator[tuple[Connection, Connection]]:
    ours, theirs = multiprocessing.Pipe()
    yield ours, theirs
    ours.close()
    theirs.close()


MESSAGES: list[Job | Reply] = [
    Ready(),
    ProbeJob(Path("/data/in.mp3")),
    ConvertJob(Path("in.flac"), Path("out.wav"), True, {"limits": Limits(parallelism=1)}),
    PeaksJob(Path("in.flac"), False, {"limits": Limits()}),
    ProgressReport(0.25),
    Done({"frames": 44100}),
    Failed(UnsupportedAudio, "no audio stream", retire=False),
    Failed.out_of_memory(retire=True),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_survives_the_pipe_unchanged(
    pipe: tuple[Connection, Connection], message: Job | Reply
) -> None:
    ours, theirs = pipe
    send(theirs, message)
    assert ours.recv() == message


def test_a_forked_child_reports_progress_then_its_result(
    pipe: tuple[Connection, Connection],
) -> None:
    ours, theirs = pipe
    pid = os.fork()
    if pid == 0:  # the child: speak, then leave without the parent's cleanup
        try:
            report = progress_sender(theirs)
            report(0.5)
            send(theirs, Done(Path("result.wav")))
        finally:
            os._exit(0)
    theirs.close()
    try:
        assert receive(ours) == ProgressReport(0.5)
        assert receive(ours) == Done(Path("result.wav"))
    finally:
        os.waitpid(pid, 0)


def test_anything_but_a_reply_is_an_unexpected_failure(
    pipe: tuple[Connection, Connection],
) -> None:
    ours, theirs = pipe
    theirs.send(("done", "a tuple of the old kind"))
    with pytest.raises(ConversionFailed, match=f"^{UNEXPECTED_MESSAGE}$"):
        receive(ours)


def test_errors_become_replies_that_rebuild_only_audio_errors() -> None:
    assert Failed.of(UnsupportedAudio("no audio stream")).error().args == ("no audio stream",)
    assert type(Failed.of(UnsupportedAudio("x")).error()) is UnsupportedAudio

    memory = Failed.of(MemoryError())
    assert (memory.error_type, memory.message, memory.retire) == (
        LimitExceeded,
        MEMORY_MESSAGE,
        False,
    )

    leaky = Failed.of(FileNotFoundError("/srv/secret-token/in.mp3"))
    assert (leaky.error_type, leaky.message) == (ConversionFailed, UNEXPECTED_MESSAGE)

    forged = Failed(SystemExit, "bye")  # type: ignore[arg-type]
    rebuilt = forged.error()
    assert type(rebuilt) is ConversionFailed and str(rebuilt) == UNEXPECTED_MESSAGE
