"""Schema fuzzing: schemathesis drives every operation of a running server's ``/openapi.json``.

Client generators and the ``/docs`` page trust the schema, so it must say what the server does.
For every generated case — valid and invalid requests, with a credited key, an admin key, and
with no or a garbage key — the answer must be no 5xx; in its dialect's envelope with ``code``
equal to the HTTP status (``envelope``, below); of a status, content type, headers and body the
schema declares for the operation; and an invalid request must be refused with a 4xx. An
operation that succeeds with a key must refuse the same request without one (``ignored_auth``).

The server is real and seeded (tracks imported, WAVs converted, spare keys and victim accounts
to revoke); each submission has an example that succeeds, and in the valid fuzzed cases each
id, URL and option is a real one half the time, so they reach past the lookups. Generation is
derandomized: CI runs the same cases every time.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, GenerationMode, HookContext, Response
from schemathesis import checks as st_checks

from wavforge.errors import ALL_ERRORS
from wavforge.http.openapi import MEANINGS

from conftest import (
    FUZZ_CASES,
    FUZZ_FAILURES,
    Server,
    wait_for_source_peaks,
    wait_for_wav,
    wavforge,
)
from support.deployments import Modes
from support.processes import free_port
from support.receiver import Receiver

SEED = 20261121
# The unified dialect's paths (vidgo/PoYo): its tasks, and the account balance.
UNIFIED_PREFIXES = ("/api/generate/", "/api/user/")
ADMIN_PREFIX = "/api/v1/admin/"
# Anything that is not a key of this server; None sends no Authorization header at all.
GARBAGE_KEYS = (None, "Bearer", "Bearer wf_not-a-key", "Basic d2F2OmZvcmdl", "Token x", "Bearer  ")


# The envelope check --------------------------------------------------------------------------


API_DOWNLOADS = {"/api/v1/account/wav-tasks/archive"}  # a file, not an envelope, on success


def envelope_problem(path: str, status: int, content_type: str, body: Any) -> str | None:
    """What is wrong with an answer's envelope (CONTRACT §2), or None.

    Every ``/api/...`` answer and every error anywhere is an envelope; the unified dialect's
    under ``/api/generate/`` and ``/api/user/``, Suno's everywhere else. Exempt: downloads
    (the file; the WAV archive's ZIP) and their 416 (no body), and ``/healthz`` (its own small
    body).
    """
    if status < 400 and path in API_DOWNLOADS:
        return None
    if not (path.startswith("/api/") or (status >= 400 and status != 416)):
        return None
    if not content_type.startswith("application/json"):
        return f"content type {content_type!r}, not JSON"
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    check = _unified if path.startswith(UNIFIED_PREFIXES) else _suno
    return _code_problem(body, status) or check(body, status)


def _code_problem(body: dict[str, Any], status: int) -> str | None:
    if body.get("code") != status or type(body.get("code")) is not int:
        return f"code {body.get('code')!r} differs from the HTTP status {status}"
    if status >= 500 and (body.get("msg") or body.get("message")) != "server error":
        return "a server error says more than 'server error'"
    return None


def _suno(body: dict[str, Any], status: int) -> str | None:
    if set(body) != {"code", "msg", "data"}:
        return f"Suno envelope keys are {sorted(body)}, not code, msg, data"
    if not isinstance(body["msg"], str) or not body["msg"]:
        return "msg is not a non-empty string"
    if status == 200 and body["msg"] != "success":
        return "a success's msg is not 'success'"
    return None


def _unified(body: dict[str, Any], status: int) -> str | None:
    keys = {"code", "data"} if status == 200 else {"code", "data", "message", "error"}
    if set(body) != keys:
        return f"unified envelope keys are {sorted(body)}, not {sorted(keys)}"
    if status != 200 and (not isinstance(body["message"], str) or not body["message"]):
        return "message is not a non-empty string"
    if status != 200 and body["error"].get("message") != body["message"]:
        return "error.message is not the message"
    return None


@schemathesis.check
def envelope(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every answer in its dialect's envelope, its code mirroring the HTTP status."""
    if case.method.upper() == "HEAD":
        return None  # no body, by HTTP's rules
    content_type = response.headers.get("content-type", [""])[0]
    body = _json_or_none(response) if content_type.startswith("application/json") else None
    problem = envelope_problem(case.path, response.status_code, content_type, body)
    if problem:
        raise AssertionError(f"not the contract's envelope: {problem}")
    return None


def _json_or_none(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@schemathesis.check
def refused_without_a_key(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Without a valid key, no ``/api/...`` operation answers anything but an error."""
    if case.path.startswith("/api/") and response.status_code < 400:
        raise AssertionError(f"answered {response.status_code} without a valid key")
    return None


# Checks on every case: schemathesis's own (no 5xx, status code, content type, headers and body
# as declared, invalid input refused) and ours. ``unsupported_method`` is left out: the contract
# answers a wrong method with 404, where schemathesis expects 405.
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_headers_conformance,
    st_checks.response_schema_conformance,
    st_checks.negative_data_rejection,
    envelope,
]
WITH_KEY = [*CHECKS, st_checks.ignored_auth]
WITHOUT_KEY = [*CHECKS, refused_without_a_key]

CONFIG: dict[str, Any] = {
    "seed": SEED,
    # The tests send the Authorization header themselves: generated ones would be garbage, and a
    # negative case "without the required header" would be sent with a valid key anyway.
    "generation": {"with-security-parameters": False},
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        # Stateful links would feed the caller's own key id to the revoke operations.
        "stateful": {"enabled": False},
    },
    "checks": {
        # Too long is 413 in this contract; maintenance (455) refuses before validating.
        "negative_data_rejection": {
            "expected-statuses": [400, 401, 403, 404, 405, 409, 413, 429, 430, 455]
        },
    },
}


def fuzz_settings(examples: int) -> Callable[[Any], Any]:
    """Hypothesis settings: a budget per operation, no deadline (a real server over loopback),
    the same cases every run, and no example database left in the working tree."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


# The seeded server ----------------------------------------------------------------------------


Hints = dict[str, list[dict[str, Any]]]  # field name -> values for it (and fields set with it)


@dataclass(frozen=True)
class World:
    """What the fuzzer knows of its server: two keys, and real values to put into cases."""

    url: str
    customer: str
    admin: str
    hints: Hints
    by_path: dict[str, Hints]  # an operation's own, so that each can succeed once
    examples: dict[str, Any]  # a request body that succeeds, by path

    def headers(self, case: Case) -> dict[str, str]:
        key = self.admin if case.path.startswith(ADMIN_PREFIX) else self.customer
        return {"Authorization": f"Bearer {key}"}

    def hints_for(self, path: str) -> Hints:
        return self.hints | self.by_path.get(path, {})


@pytest.fixture(scope="module")
def fuzz_server(mode: Modes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of the fuzzer's own: it creates and revokes keys and switches maintenance."""
    data = tmp_path_factory.mktemp("fuzz") / "data"
    data.mkdir()
    server = Server(data_dir=data, port=free_port(), deployment=mode.deployment()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def callbacks() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


@pytest.fixture(scope="module")
def world(fuzz_server: Server, callbacks: Receiver, mp3: Path) -> World:
    """Tracks (one converted per dialect, two free), spare keys, victim accounts."""
    customer = fuzz_server.create_key(credits=1000, name="fuzz")["key"]
    admin = _admin_key(fuzz_server)
    with fuzz_server.client(customer) as api, fuzz_server.client(admin) as root:
        music = _import(api, mp3, 5)  # the fifth is the one deletion may take
        tracks = [track["id"] for track in music["tracks"]]
        wavs = [_convert_suno(api, tracks[0], callbacks.url), _convert_unified(api, tracks[1])]
        source = music["tracks"][0]["audioUrl"]
        spares = [_created(api, "/api/v1/account/keys", {"name": "spare"}) for _ in range(2)]
        victims = [_created(root, ADMIN_PREFIX + "accounts", {"name": "victim"}) for _ in range(2)]
        links = [_wav_link(api, wavs[0]), source]
        callback_log = _data(api.get("/api/v1/wav/callbacks", params={"taskId": wavs[0]}))
        for track in tracks[:4]:  # measured after the import: the peaks endpoint finds them
            wait_for_source_peaks(api, track)
    tasks = [music["taskId"], *wavs]
    values = {
        "taskId": tasks,
        "task_id": tasks,
        "audioId": tracks[:3],  # not the fourth track: the unified example converts it
        "audio_id": [*tracks[:2], tracks[3]],  # nor the third: the Suno example's
        "before": tracks + wavs,
        "taskIds": [wavs, wavs[:1]],
        "callBackUrl": [callbacks.url],
        "callback_url": [callbacks.url],
        "model": ["convert-to-wav"],
        "urls": [[source]],
        "file": [[mp3.read_bytes()]],
        "account_id": [victim["accountId"] for victim in victims],
        "webhook_id": [delivery["webhookId"] for delivery in callback_log["deliveries"]],
        "url": [callbacks.url],
        "state": ["delivered", "pending", "failed"],
        **_options(),
    }
    by_path = {
        f"{prefix}/keys/{{key_id}}/{action}": {"key_id": [{"key_id": owner["keyId"]}]}
        for prefix, owners in (("/api/v1/account", spares), ("/api/v1/admin", victims))
        for action, owner in zip(("revoke", "reset"), owners, strict=True)
    }
    # Deleting a track takes its files: only the spare one, never those the links point to.
    by_path["/api/v1/account/tracks/{audio_id}"] = {"audio_id": [{"audio_id": tracks[4]}]}
    hints = {name: [{name: value} for value in pool] for name, pool in values.items()}
    hints["signature"] = [_link_fields(link) for link in links]
    examples = {
        "/api/v1/wav/generate": {"audioId": tracks[2], "callBackUrl": callbacks.url},
        "/api/generate/submit": {"model": "convert-to-wav", "input": {"audio_id": tracks[3]}},
        "/api/v1/account/wav-tasks/archive": {"taskIds": wavs},
        "/api/v1/account/wav-tasks/archive-link": {"taskIds": wavs},
    }
    return World(fuzz_server.url, customer, admin, hints, by_path, examples)


def _options() -> dict[str, list[Any]]:
    """Valid output options in both spellings (None: the default)."""
    options: dict[str, list[Any]] = {
        "bitDepth": [None, 16, 24],
        "sampleFormat": [None, "int"],
        "sampleRate": [None, 48000],
    }
    snake = {"bitDepth": "bit_depth", "sampleFormat": "sample_format", "sampleRate": "sample_rate"}
    return options | {snake[name]: pool for name, pool in options.items()}


def _admin_key(server: Server) -> str:
    created = wavforge(
        "keys", "create", "--name", "fuzz-admin", "--admin", "--json", env=server.env
    )
    key: str = json.loads(created.stdout)["key"]
    return key


def _import(api: httpx.Client, mp3: Path, count: int) -> dict[str, Any]:
    files = [("file", (f"song{i}.mp3", mp3.read_bytes())) for i in range(count)]
    return _data(api.post("/api/v1/music/import", files=files))


def _convert_suno(api: httpx.Client, track: str, callback: str) -> str:
    body = {"audioId": track, "callBackUrl": callback}
    task: str = _data(api.post("/api/v1/wav/generate", json=body))["taskId"]
    assert wait_for_wav(api, task)["successFlag"] == "SUCCESS"
    return task


def _convert_unified(api: httpx.Client, track: str) -> str:
    body = {"model": "convert-to-wav", "input": {"audio_id": track}}
    task: str = _data(api.post("/api/generate/submit", json=body))["task_id"]
    assert wait_for_wav(api, task)["successFlag"] == "SUCCESS"
    return task


def _wav_link(api: httpx.Client, task: str) -> str:
    record = _data(api.get("/api/v1/wav/record-info", params={"taskId": task}))
    link: str = record["response"]["audioWavUrl"]
    return link


def _created(api: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return _data(api.post(path, json=body))


def _data(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _link_fields(link: str) -> dict[str, Any]:
    """A signed download link as the values of the download operation's parameters."""
    parts = urlsplit(link)
    _, _, kind, ident, filename = parts.path.split("/")
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    return {"kind": kind, "ident": ident, "filename": filename, **query}


# Real values in generated cases ----------------------------------------------------------------


def _containers(case: Case) -> list[dict[str, Any]]:
    """Where a case's named values are: path, query, the JSON body and its ``input``."""
    found = [case.path_parameters, case.query]
    if isinstance(case.body, dict):
        found.append(case.body)
        if isinstance(case.body.get("input"), dict):
            found.append(case.body["input"])
    return [container for container in found if isinstance(container, dict)]


def _patched(case: Case, chosen: dict[str, dict[str, Any] | None]) -> Case:
    """``case`` with the chosen real values in every field of that name it already has."""
    case.path_parameters = copy.deepcopy(case.path_parameters)
    case.query = copy.deepcopy(case.query)
    case.body = copy.deepcopy(case.body)
    for fields in filter(None, chosen.values()):
        for container in _containers(case):
            container.update({name: value for name, value in fields.items() if name in container})
    return case


def _hintable(case: Case) -> bool:
    """Valid cases of the fuzzing phase: an invalid one stays exactly as invalid as generated,
    and the explicit examples as written."""
    meta = case.meta
    return (
        meta is not None
        and meta.generation.mode is GenerationMode.POSITIVE
        and meta.phase.name == "fuzzing"
    )


def hinted(world: World) -> Callable[[HookContext, Case], Any]:
    """A ``flatmap_case`` hook: each hinted field of a case is, half the time, a real value."""

    def flatmap_case(_: HookContext, case: Case) -> st.SearchStrategy[Case]:
        if not _hintable(case):
            return st.just(case)
        hints = world.hints_for(case.path)
        names = {name for container in _containers(case) for name in container}
        present = sorted(names & hints.keys())
        choices = {name: st.one_of(st.none(), st.sampled_from(hints[name])) for name in present}
        return st.fixed_dictionaries(choices).map(lambda chosen: _patched(case, chosen))

    return flatmap_case


def load_schema(url: str, examples: dict[str, Any]) -> schemathesis.BaseSchema:
    """The server's own schema, as clients download it, with request ``examples`` added
    (path -> a JSON body that succeeds once, so every submission has its success case)."""
    raw = httpx.get(f"{url}/openapi.json").raise_for_status().json()
    for path, body in examples.items():
        raw["paths"][path]["post"]["requestBody"]["content"]["application/json"]["example"] = body
    config = schemathesis.Config.from_dict({**CONFIG, "base-url": url})
    return schemathesis.openapi.from_dict(raw, config=config)


@pytest.fixture(scope="module")
def fuzz_schema(world: World) -> schemathesis.BaseSchema:
    """With the seeded values as examples and hints."""
    schema = load_schema(world.url, world.examples)
    schema.hooks.register_hook_with_name(hinted(world), "flatmap_case")
    return schema


@pytest.fixture(scope="module")
def bare_schema(fuzz_server: Server) -> schemathesis.BaseSchema:
    """The schema as served, for callers without a key."""
    return load_schema(fuzz_server.url, {})


# The tests ------------------------------------------------------------------------------------

with_key = schemathesis.pytest.from_fixture("fuzz_schema")
without_key = schemathesis.pytest.from_fixture("bare_schema")
_garbage = itertools.cycle(GARBAGE_KEYS)


@contextmanager
def tallied(mode: Modes, case: Case, response: Response) -> Iterator[None]:
    """Count the case for the run's summary, and its operation if it fails."""
    FUZZ_CASES[(mode.mode, case.operation.label, response.status_code)] += 1
    try:
        yield
    except BaseException:  # schemathesis's FailureGroup is a BaseExceptionGroup
        FUZZ_FAILURES.add(case.operation.label)
        raise


def call_and_validate(case: Case, headers: dict[str, str], checks: list[Any], mode: Modes) -> None:
    """``case.call_and_validate``, with the answer counted before it is judged.

    A multipart form carries text only: a negative case's wrong JSON type (an object where
    the schema says string) goes out as its text, which is a valid form field, so accepting
    it is right and the negative-data check does not apply to form bodies.
    """
    if case.media_type == "multipart/form-data":
        checks = [check for check in checks if check is not st_checks.negative_data_rejection]
    response = case.call(headers=headers)
    with tallied(mode, case, response):
        case.validate_response(
            response, checks=checks, headers=headers, transport_kwargs={"headers": headers}
        )


@fuzz_settings(examples=40)
@with_key.parametrize()
def test_every_operation_with_a_key(case: Case, world: World, mode: Modes) -> None:
    """Customer key for the API, admin key for ``/api/v1/admin/...``; real ids half the time."""
    call_and_validate(case, world.headers(case), WITH_KEY, mode)


@fuzz_settings(examples=6)
@without_key.parametrize()
def test_every_operation_without_a_valid_key(case: Case, mode: Modes) -> None:
    """No key or garbage in ``Authorization``: an envelope, and never a success."""
    authorization = next(_garbage)
    case.headers.pop("Authorization", None)
    headers = {"Authorization": authorization} if authorization else {}
    call_and_validate(case, headers, WITHOUT_KEY, mode)


def test_the_fuzzing_reached_every_operation_and_past_the_lookups(
    fuzz_schema: schemathesis.BaseSchema, mode: Modes
) -> None:
    """Guards the tests above against passing vacuously (no cases, or every case refused)."""
    seen = {(operation, status) for (run, operation, status) in FUZZ_CASES if run == mode.mode}
    operations = {result.ok().label for result in fuzz_schema.get_all_operations()}
    assert {operation for operation, _ in seen} == operations
    succeeded = {operation for operation, status in seen if 200 <= status < 300}
    # An operation whose fuzzing failed stopped early; its failure is reported already.
    assert operations - succeeded - FUZZ_FAILURES == set(), "operations that never succeeded"


# The check itself, and the schema's promises ---------------------------------------------------

JSON = "application/json"


@pytest.mark.parametrize(
    ("path", "status", "content_type", "body", "problem"),
    [
        ("/api/v1/x", 404, JSON, {"detail": "Not Found"}, "code"),  # FastAPI's own
        ("/api/v1/x", 422, JSON, {"code": 400, "msg": "bad", "data": None}, "code"),
        ("/api/v1/x", 200, JSON, {"code": 200, "msg": "ok", "data": 1}, "success"),
        ("/api/v1/x", 400, JSON, {"code": 400, "msg": "", "data": None}, "msg"),
        ("/api/v1/x", 500, "text/html", "<h1>Internal Server Error</h1>", "JSON"),
        ("/api/v1/x", 500, JSON, {"code": 500, "msg": "KeyError: 'x'", "data": None}, "says"),
        ("/api/generate/x", 400, JSON, {"code": 400, "msg": "bad", "data": None}, "keys"),
        ("/api/generate/x", 200, JSON, {"code": 200, "data": 1, "message": "x"}, "keys"),
        ("/files/wav/a/b.wav", 403, JSON, [403], "object"),
    ],
)
def test_the_envelope_check_refuses_what_is_not_an_envelope(
    path: str, status: int, content_type: str, body: Any, problem: str
) -> None:
    found = envelope_problem(path, status, content_type, body)
    assert found is not None and problem in found


@pytest.mark.parametrize(
    ("path", "status", "content_type", "body"),
    [
        ("/api/v1/x", 200, JSON, {"code": 200, "msg": "success", "data": None}),
        ("/api/v1/x", 409, JSON, {"code": 409, "msg": "exists", "data": {"taskId": "t"}}),
        ("/api/generate/x", 200, JSON, {"code": 200, "data": {}}),
        (
            "/api/generate/x",
            404,
            JSON,
            {
                "code": 404,
                "data": None,
                "message": "no",
                "error": {"message": "no", "type": "resource_not_found_error"},
            },
        ),
        ("/files/wav/a/b.wav", 200, "audio/wav", None),
        ("/files/wav/a/b.wav", 416, "", None),
        ("/healthz", 200, JSON, {"status": "ok", "version": "1"}),
    ],
)
def test_the_envelope_check_accepts_the_envelopes(
    path: str, status: int, content_type: str, body: Any
) -> None:
    assert envelope_problem(path, status, content_type, body) is None


def test_the_schema_declares_envelopes_and_keys_not_422s(fuzz_server: Server) -> None:
    """What the fuzzing relies on, pinned: every /api operation needs the bearer key and
    declares 401 in its dialect's error envelope; FastAPI's 422 appears nowhere."""
    schema = httpx.get(f"{fuzz_server.url}/openapi.json").raise_for_status().json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            assert "422" not in operation["responses"]
            if path.startswith("/api/"):
                error = "UnifiedError" if path.startswith(UNIFIED_PREFIXES) else "SunoError"
                unauthorized = operation["responses"]["401"]["content"][JSON]["schema"]
                assert operation["security"] == [{"apiKey": []}]
                assert unauthorized == {"$ref": f"#/components/schemas/{error}"}


def test_every_error_code_is_described_for_the_schema() -> None:
    assert {error.code for error in ALL_ERRORS} <= MEANINGS.keys()
