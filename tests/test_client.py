"""The Python client against a real server: both dialects, sync and async, errors, downloads."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile

from wavforge.core.states import WavStatus as ServerWavStatus
from wavforge_client import (
    ApiError,
    AsyncClient,
    Client,
    ConnectionFailed,
    MusicTask,
    Track,
    UnexpectedResponse,
    Upload,
    Usage,
    WaitTimeout,
    WavStatus,
    WavTask,
    WavUnavailable,
)
from wavforge_client._protocol import Backoff, Waiter

from audiogen import ffmpeg_s16, make_mp3
from conftest import MakeServer, Server, wait_until, wavforge
from support.processes import free_port
from support.receiver import Receiver

# The client speaks HTTP; what is behind the server is tested elsewhere in both modes.
pytestmark = pytest.mark.embedded_only


@pytest.fixture
def key(account: dict[str, Any]) -> str:
    return str(account["key"])


def test_sync_client_both_dialects(
    server: Server, key: str, mp3: Path, tmp_path: Path, receiver: Receiver
) -> None:
    with Client(server.url, key) as wf:
        music = wf.import_files([mp3, Upload("second.mp3", mp3.read_bytes())], tags="t")
        first, second = music.tracks
        assert first.title == second.title == "Song Title"  # from the tag
        assert first.duration == pytest.approx(4.0, abs=0.1) and first.tags == "t"
        assert [t.id for t in wf.music_record(music.id).tracks] == [first.id, second.id]
        detail = wf.detail(music.id)
        assert isinstance(detail, MusicTask)
        assert [t.id for t in detail.tracks] == [first.id, second.id]

        # the unified dialect, through the high-level helpers
        seen: list[WavTask] = []
        converting = wf.convert(first, bit_depth=24, loudness=True)
        task = wf.wait(converting, timeout=60, on_progress=seen.append)
        assert task.status is WavStatus.SUCCESS and task.progress == 100
        assert task.track_id == first.id and task.error is None
        assert task.analysis is not None and task.analysis.output_bit_depth == 24
        assert task.analysis.integrated_loudness is not None  # asked for, and measured
        assert seen and seen[-1] == task  # every change was told, the end included
        saved = wf.download_wav(task, tmp_path)  # a directory: the server's file name
        assert saved.parent == tmp_path and saved.suffix == ".wav"
        info = soundfile.info(str(saved))
        assert (info.samplerate, info.frames, info.subtype) == (
            44100,
            task.analysis.frames,
            "PCM_24",
        )

        # the Suno dialect: generate with a callback, read the record, the delivery log
        suno_id = wf.generate_wav(audio_id=second.id, callback_url=receiver.url)
        done = wf.wait(suno_id, timeout=60)
        assert done.status.succeeded and done.callback_url == receiver.url
        assert wf.wav_record(suno_id).wav_url == done.wav_url
        target = wf.download_wav(suno_id, tmp_path / "two.wav")
        with wave.open(str(target)) as reader:
            assert reader.getframerate() == 44100 and reader.getsampwidth() == 2
            assert reader.readframes(reader.getnframes()) == ffmpeg_s16(mp3)
        receiver.wait_for(1)
        [delivery] = wf.callbacks(suno_id)
        assert delivery.url == receiver.url

        unified = wf.status(suno_id)
        assert isinstance(unified, WavTask) and unified.wav_url and unified.progress == 100
        assert wf.credit() == 98
        ledger = wf.ledger()
        assert ledger.balance == 98
        assert sorted(e.task_id for e in ledger.entries if e.reason == "charge") == sorted(
            [task.id, suno_id]
        )
    assert not list(tmp_path.glob("*.part"))


def test_async_client(server: Server, key: str, mp3: Path, tmp_path: Path) -> None:
    async def run() -> None:
        async with AsyncClient(server.url, key) as wf:
            music = await wf.import_files([mp3.read_bytes()])
            assert music.tracks[0].title == "Song Title"  # the tag, not the name "upload"
            submitted = await wf.submit(task_id=music.id, sample_rate=48000)
            assert submitted.status is WavStatus.PENDING
            seen: list[WavTask] = []
            task = await wf.wait(submitted, on_progress=seen.append)
            assert task.status is WavStatus.SUCCESS and seen[-1].progress == 100
            target = await wf.download_wav(task.wav_url or "", tmp_path / "async.wav")
            info = soundfile.info(str(target))
            assert info.samplerate == 48000 and task.analysis is not None
            assert info.frames == task.analysis.frames
            assert await wf.credit() == 99
            # a folder that does not exist yet, named with a trailing slash
            made = await wf.download_wav(task, f"{tmp_path}/wavs/")
            assert made.parent == tmp_path / "wavs" and made.read_bytes()[:4] == b"RIFF"
            with pytest.raises(FileExistsError):
                await wf.download_wav(task, tmp_path / "wavs")

    asyncio.run(run())


def test_download_never_replaces_a_file_silently(
    server: Server, key: str, mp3: Path, tmp_path: Path
) -> None:
    """A folder path ending in "/" is made and used as a folder (it used to become a file
    named "wavs", overwritten by the next download); an existing file stays unless asked."""
    with Client(server.url, key) as wf:
        task = wf.wait(wf.convert(wf.import_files([mp3]).tracks[0]), timeout=60)
        heard: list[tuple[int, int | None]] = []
        first = wf.download_wav(task, str(tmp_path / "wavs") + "/", on_bytes=_collect(heard))
        assert first.parent == tmp_path / "wavs" and first.is_file()
        size = first.stat().st_size
        assert heard[-1] == (size, size) and {total for _, total in heard} == {size}
        assert [done for done, _ in heard] == sorted({done for done, _ in heard})
        mine = tmp_path / "mine.wav"
        mine.write_bytes(b"my own work")
        with pytest.raises(FileExistsError):
            wf.download_wav(task, mine)
        assert mine.read_bytes() == b"my own work"
        assert not list(tmp_path.glob(".mine.wav.*.part"))  # nothing left behind
        assert wf.download_wav(task, mine, overwrite=True).read_bytes()[:4] == b"RIFF"


def _collect(heard: list[tuple[int, int | None]]) -> Any:
    return lambda done, total: heard.append((done, total))


def test_download_bars_say_bytes_speed_and_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    from wavforge.cli import remote

    monkeypatch.setattr(remote.time, "monotonic", lambda: 110.0)
    assert remote._transfer_text(50_000_000, 200_000_000, 100.0) == (
        "50.0 MB/200.0 MB 5.0 MB/s 0:30 left"
    )
    assert remote._transfer_text(1_000, None, 100.0) == "1.0 kB 100 bytes/s"


def test_errors_are_api_errors_with_the_contract_code(
    server: Server, key: str, mp3: Path, tmp_path: Path
) -> None:
    with Client(server.url, "wf_not_a_key") as wrong, pytest.raises(ApiError) as refused:
        wrong.credit()
    assert (refused.value.code, refused.value.status) == (401, 401)
    assert "wf_not_a_key" not in str(refused.value) + repr(refused.value) + repr(wrong)

    notes = tmp_path / "notes.txt"
    notes.write_text("not audio")
    with Client(server.url, key) as wf:
        for lookup in (wf.wav_record, wf.music_record, wf.status, wf.detail, wf.wait):
            with pytest.raises(ApiError) as unknown:
                lookup("0" * 32)
            assert unknown.value.code == 404 and unknown.value.status == 404
        with pytest.raises(ApiError) as not_audio:
            wf.import_files([notes])
        assert not_audio.value.code == 400 and "notes.txt" in not_audio.value.msg
        track = wf.import_files([mp3]).tracks[0]
        task_id = wf.convert(track)
        with pytest.raises(ApiError) as conflict:
            wf.convert(track)
        assert conflict.value.code == 409 and conflict.value.existing_task_id == task_id
        with pytest.raises(ApiError) as bad_option:
            wf.convert(track, bit_depth=12)
        assert bad_option.value.code == 400 and "bit_depth" in bad_option.value.msg
        with pytest.raises(ApiError) as no_callback:
            wf.generate_wav(audio_id=track.id, callback_url="")
        assert no_callback.value.code == 400

    async def unknown_async() -> None:
        async with AsyncClient(server.url, key) as wf:
            with pytest.raises(ApiError) as missing:
                await wf.wav_record("nope")
            assert missing.value.code == 404
        async with AsyncClient(server.url, "wf_not_a_key") as wrong:
            with pytest.raises(ApiError) as refused:
                await wrong.credit()
            assert refused.value.code == 401

    asyncio.run(unknown_async())


def test_no_server_and_not_a_server() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", "k") as nobody, pytest.raises(ConnectionFailed):
        nobody.credit()
    with pytest.raises(ValueError):
        Client("ftp://example.com", "k")
    with pytest.raises(ValueError):
        Client("http://127.0.0.1", "two words")


def test_not_a_wavforge_answer(receiver: Receiver) -> None:
    """Something answers, but not wavforge (the receiver answers a GET with an HTML 501)."""
    elsewhere = receiver.url.removesuffix("/callback")
    with Client(elsewhere, "k") as wf, pytest.raises(UnexpectedResponse) as caught:
        wf.credit()
    assert caught.value.status == 501


def test_failed_conversion_and_its_missing_wav(make_server: MakeServer, tmp_path: Path) -> None:
    server = make_server(tmp_path, WAVFORGE_MAX_DURATION_SECONDS="2").start()
    try:
        long = make_mp3(tmp_path / "long.mp3", 3.0)
        with Client(server.url, server.create_key()["key"]) as wf:
            task = wf.wait(wf.convert(wf.import_files([long]).tracks[0]), timeout=60)
            assert task.status is WavStatus.GENERATE_WAV_FAILED and task.wav_url is None
            assert task.error is not None and task.error.code == 400
            assert "limit" in task.error.message
            with pytest.raises(WavUnavailable, match=task.id):
                wf.download_wav(task, tmp_path / "never.wav")
            assert not (tmp_path / "never.wav").exists()
            assert wf.credit() == 100  # refunded
    finally:
        server.stop()


def test_rate_limited_requests_are_retried(make_server: MakeServer, tmp_path: Path) -> None:
    """430 means the server did nothing: the client waits Retry-After and sends it again."""
    server = make_server(tmp_path, WAVFORGE_RATE_LIMIT="3/second").start()
    try:
        key = server.create_key(credits=7)["key"]
        with Client(server.url, key) as wf:
            started = time.monotonic()
            assert [wf.credit() for _ in range(7)] == [7] * 7
            assert time.monotonic() - started >= 1  # it had to wait at least once
        with Client(server.url, key, rate_limit_retries=0) as impatient:
            with pytest.raises(ApiError) as limited:
                for _ in range(4):
                    impatient.credit()
            assert limited.value.code == 430 and limited.value.retry_after
    finally:
        server.stop()


def test_from_env(server: Server, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVFORGE_URL", server.url)
    monkeypatch.setenv("WAVFORGE_API_KEY", key)
    with Client.from_env() as wf:
        assert wf.credit() == 100 and key not in repr(wf)
    monkeypatch.delenv("WAVFORGE_API_KEY")
    with pytest.raises(ValueError, match="WAVFORGE_API_KEY"):
        AsyncClient.from_env()


def test_importing_the_client_loads_nothing_of_the_server() -> None:
    heavy = ["fastapi", "sqlalchemy", "av", "numpy", "pydantic", "starlette", "wavforge.core"]
    code = f"import sys, wavforge_client; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_client_states_are_the_servers() -> None:
    assert {s.value for s in WavStatus} == {s.value for s in ServerWavStatus}


def test_httpx_errors_are_all_translated() -> None:
    """Every error httpx can raise while sending becomes one of the client's."""
    from wavforge_client import ClientError
    from wavforge_client._transport import translate

    def subclasses(kind: type[httpx.HTTPError]) -> list[type[httpx.HTTPError]]:
        return [kind, *(s for sub in kind.__subclasses__() for s in subclasses(sub))]

    request = httpx.Request("GET", "http://127.0.0.1:1/x?signature=secret")
    for kind in subclasses(httpx.RequestError):
        error = kind("boom", request=request)
        translated = translate(error, str(request.url))
        assert isinstance(translated, ClientError), kind
        assert "secret" not in str(translated)
    assert isinstance(translate(httpx.ConnectError("no"), "http://x"), ConnectionFailed)


def test_waiter_tells_changes_and_times_out() -> None:
    """``wait``'s rules without a server: a clock that moves only when told to."""
    now = [0.0]
    told: list[tuple[str, int | None]] = []
    waiter = Waiter(
        "t1",
        timeout=5,
        on_progress=lambda t: told.append((t.status.value, t.progress)),
        backoff=Backoff(first=1, factor=2, cap=3),
        clock=lambda: now[0],
    )

    def task(status: WavStatus, progress: int | None) -> WavTask:
        return WavTask("t1", status, progress, None, None, None)

    assert waiter.observe(task(WavStatus.PENDING, 0)) == 1
    assert waiter.observe(task(WavStatus.PENDING, 0)) == 2  # unchanged: not told again
    now[0] = 3.5
    assert waiter.observe(task(WavStatus.RUNNING, 40)) == 1.5  # capped by what is left
    assert told == [("PENDING", 0), ("RUNNING", 40)]
    now[0] = 5
    with pytest.raises(WaitTimeout, match="40%"):
        waiter.observe(task(WavStatus.RUNNING, 40))


# ---- the account and its administration


def test_account_self_service(
    server: Server, key: str, account: dict[str, Any], mp3: Path, tmp_path: Path
) -> None:
    with Client(server.url, key) as wf:
        mine = wf.account()
        assert (mine.id, mine.credits, mine.active_keys, mine.admin) == (
            account["account_id"],
            100,
            1,
            False,
        )
        assert mine.webhook_secret == account["webhook_secret"]
        assert mine.usage == Usage(tracks=0, wav_tasks={}, credits_spent=0)
        assert account["webhook_secret"] not in repr(mine)

        first = wf.import_files([mp3], title="First").tracks[0]
        second = wf.import_files([mp3], title="Second").tracks[0]
        task = wf.wait(wf.convert(first), timeout=60)

        listed = wf.tracks()
        assert [t.id for t in listed] == [second.id, first.id]
        newer, older = listed
        assert isinstance(older, Track) and older.title == "First"  # so convert() takes it
        assert (older.wav_task_id, older.wav_status) == (task.id, WavStatus.SUCCESS)
        assert newer.wav_task_id is None and newer.source_format == "mp3"
        assert newer.music_task_id and newer.audio_url and newer.sample_rate == 44100
        assert [t.id for t in wf.tracks(limit=1)] == [second.id]
        assert newer.created is not None
        assert [t.id for t in wf.tracks(limit=1, before=second.id)] == [first.id]
        assert wf.tracks(before=first.id) == ()
        with pytest.raises(ApiError) as unknown:
            wf.tracks(before="no-such-track")
        assert unknown.value.code == 404 and "no-such-track" in str(unknown.value)

        (done,) = wf.wav_tasks()
        assert isinstance(done, WavTask) and done.id == task.id and done.title == "First"
        assert (done.status, done.progress) == (WavStatus.SUCCESS, 100)
        assert (done.wav_url, done.analysis, done.track_id) == (
            task.wav_url,
            task.analysis,
            first.id,
        )
        assert wf.wav_tasks(before=done.id) == ()
        saved = wf.download_wav(done, tmp_path)  # a listed task is a WavTask everywhere
        assert saved.stat().st_size > 0

        after = wf.account()
        assert after.usage == Usage(
            tracks=2, wav_tasks={WavStatus.SUCCESS: 1}, credits_spent=100 - after.credits
        )
        assert hash(after)  # a snapshot, as every model

        rotated = wf.rotate_webhook_secret()
        assert rotated.secret != account["webhook_secret"]
        assert rotated.previous_valid_until is not None
        assert rotated.previous_valid_until > datetime.now(UTC) + timedelta(hours=23)
        assert rotated.secret not in repr(rotated)
        assert wf.account().webhook_secret == rotated.secret

        with pytest.raises(ApiError) as not_admin:
            wf.admin_accounts()
        assert not_admin.value.code == 403


def test_keys_of_the_account(server: Server, key: str) -> None:
    with Client(server.url, key) as wf:
        laptop = wf.create_key("laptop")
        assert laptop.key.startswith("wf_") and laptop.webhook_secret
        assert laptop.key not in repr(laptop) and laptop.webhook_secret not in repr(laptop)
        with Client(server.url, laptop.key) as other:
            assert other.credit() == 100

        keys = wf.api_keys()
        assert [k.name for k in keys] == ["test", "laptop"]
        assert keys[1].id == laptop.id and not keys[1].revoked
        assert keys[1].account_id == laptop.account_id and laptop.key.startswith(keys[1].prefix)
        assert laptop.key not in str(keys)

        replaced = wf.reset_key(keys[1])  # an ApiKey, an IssuedKey or an id
        with Client(server.url, laptop.key) as old, pytest.raises(ApiError) as gone:
            old.credit()
        assert gone.value.code == 401
        with Client(server.url, replaced.key) as new:
            assert new.credit() == 100
        wf.revoke_key(replaced)
        with pytest.raises(ApiError) as again:
            wf.revoke_key(replaced.id)
        assert again.value.code == 404
        states = wf.api_keys()
        assert [k.revoked for k in states] == [False, True, True]

        stranger = server.create_key(name="other")
        for action in (wf.revoke_key, wf.reset_key):
            with pytest.raises(ApiError) as foreign:
                action(stranger["key_id"])
            assert foreign.value.code == 404
        with pytest.raises(ApiError):
            wf.revoke_key("../../admin/keys/x")  # one path segment, whatever it holds


def test_async_account(server: Server, key: str, mp3: Path) -> None:
    async def run() -> None:
        async with AsyncClient(server.url, key) as wf:
            assert (await wf.account()).credits == 100
            track = (await wf.import_files([mp3])).tracks[0]
            task = await wf.wait(await wf.convert(track))
            [listed] = await wf.tracks(limit=10)
            assert listed.id == track.id and listed.wav_task_id == task.id
            assert await wf.tracks(before=listed.id) == ()
            [done] = await wf.wav_tasks()
            assert done.id == task.id and done.status is WavStatus.SUCCESS
            assert await wf.wav_tasks(limit=1, before=done.id) == ()
            made = await wf.create_key("async")
            assert [k.name for k in await wf.api_keys()] == ["test", "async"]
            replaced = await wf.reset_key(made)
            assert replaced.key != made.key and replaced.account_id == made.account_id
            await wf.revoke_key(replaced)
            assert [k.revoked for k in await wf.api_keys()] == [False, True, True]
            assert (await wf.rotate_webhook_secret()).secret

    asyncio.run(run())


def test_admin_methods(make_server: MakeServer, tmp_path: Path, mp3: Path) -> None:
    """On a server of its own: maintenance mode would refuse the other tests' submissions."""
    server = make_server(tmp_path).start()
    try:
        made = wavforge("keys", "create", "--name", "ops", "--admin", "--json", env=server.env)
        ops_key = json.loads(made.stdout)["key"]
        with Client(server.url, ops_key) as ops:
            band = ops.create_account("band", credits=5)
            assert band.key not in repr(band) and band.webhook_secret not in repr(band)
            accounts = {a.id: a for a in ops.admin_accounts()}
            assert accounts[band.account_id].name == "band"
            assert accounts[band.account_id].credits == 5
            assert accounts[band.account_id].webhook_secret is None  # not an operator's
            assert accounts[band.account_id].usage is None
            assert accounts[json.loads(made.stdout)["account_id"]].admin is True

            assert ops.grant_credits(accounts[band.account_id], 10, note="gift") == 15
            with pytest.raises(ApiError) as below_zero:
                ops.grant_credits(band.account_id, -100)
            assert below_zero.value.code == 400
            with pytest.raises(ApiError) as unknown:
                ops.grant_credits("no-such-account", 1)
            assert unknown.value.code == 404

            assert ops.maintenance() is False
            with Client(server.url, band.key) as customer:
                assert customer.ledger().entries[0].note == "gift"
                track = customer.import_files([mp3]).tracks[0]
                assert ops.set_maintenance(True) is True and ops.maintenance() is True

                def refused() -> bool:
                    try:
                        customer.convert(track)
                    except ApiError as error:
                        return error.code == 455
                    return False

                assert wait_until(refused, timeout=5)  # each process rereads within a second
                with pytest.raises(ApiError) as not_admin:
                    customer.maintenance()
                assert not_admin.value.code == 403
            assert ops.set_maintenance(False) is False

        async def run() -> None:
            async with AsyncClient(server.url, ops_key) as ops:
                assert await ops.maintenance() is False
                assert len(await ops.admin_accounts()) == 2
                made = await ops.create_account("trio", admin=True)
                assert await ops.grant_credits(made.account_id, 3) == 3

        asyncio.run(run())
    finally:
        server.stop()


def test_listed_wav_task_progress_and_running_state() -> None:
    """The listing carries RUNNING (record-info folds it into PENDING) and a fraction of
    1; the client reads them as the unified dialect does: a percentage."""
    from wavforge_client import _wire

    item = {
        "taskId": "t1",
        "musicId": "a1",
        "successFlag": "PENDING",
        "status": "RUNNING",
        "progress": 0.427,
        "title": "Song",
        "response": {"audioWavUrl": None},
        "createTime": "2026-01-02 03:04:05",
    }
    (task,) = _wire.wav_tasks([item])
    assert (task.status, task.progress, task.title, task.track_id) == (
        WavStatus.RUNNING,
        42,
        "Song",
        "a1",
    )
    assert task.created == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    (failed,) = _wire.wav_tasks([item | {"status": "GENERATE_WAV_FAILED", "progress": 1.0}])
    assert failed.progress == 99  # 100 only once the WAV exists
