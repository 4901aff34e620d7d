"""A callback receiver on loopback: what a client's webhook endpoint would be.

It records every POST, answers as scripted (then 200), and files each callback under its task,
so a test can wait for a number of calls and a benchmark for a set of tasks, without polling.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Callback:
    """One callback as it arrived: which task, its outcome, and when (two clocks)."""

    task_id: str
    ok: bool
    message: str
    webhook_id: str
    at: float  # time.perf_counter() when the request reached the handler
    wall: float  # time.time() at the same moment, to compare with the service's timestamps


def callback_of(body: Any, webhook_id: str, at: float, wall: float) -> Callback:
    """The task and outcome a callback body reports, in either dialect."""
    data = body.get("data") if isinstance(body.get("data"), dict) else body
    ok = body.get("code", 200) == 200 and data.get("status", "finished") == "finished"
    message = str(body.get("msg") or data.get("error_message") or "")
    return Callback(str(data.get("task_id")), ok, message, webhook_id, at, wall)


class Receiver:
    """Records every POST it gets in ``calls`` (path, lower-cased headers, raw and parsed body,
    arrival time, the status it answered) and in ``by_task``.

    ``script`` scripts the answers: one ``(status, headers)`` or ``(status, headers, body)``
    per call in order, then 200s with no body.
    """

    def __init__(self, script: list[Any] | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.callbacks: list[Callback] = []
        self.by_task: dict[str, list[Callback]] = {}
        self.script = list(script or [])
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at, wall = time.perf_counter(), time.time()
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer, content = receiver._note(self.path, headers, body, at, wall)
                self.send_response(status)
                for name, value in answer.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: object) -> None:
                return None

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # close() waits for the loop's next look: at the default half second, 250 tests paid it.
        serving = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)
        serving.start()

    def _note(
        self, path: str, headers: dict[str, str], raw: bytes, at: float, wall: float
    ) -> tuple[int, dict[str, str], bytes]:
        body = json.loads(raw)
        callback = callback_of(body, headers.get("webhook-id", ""), at, wall)
        with self.arrived:
            status, answer, *rest = self.script.pop(0) if self.script else (200, {})
            self.calls.append(
                {"path": path, "headers": headers, "raw": raw, "body": body, "at": at,
                 "answered": status}
            )  # fmt: skip
            self.callbacks.append(callback)
            self.by_task.setdefault(callback.task_id, []).append(callback)
            self.arrived.notify_all()
        return status, answer, (rest[0] if rest else b"")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/callback"

    @property
    def tasks_seen(self) -> int:
        return len(self.by_task)

    def wait_for(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        """Until ``count`` calls have arrived; the calls so far."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.calls) >= count, timeout=timeout)
            calls = list(self.calls)
        assert len(calls) >= count, f"expected {count} callbacks, got {len(calls)}"
        return calls

    def wait_for_tasks(self, task_ids: set[str], timeout: float) -> None:
        """Until every task in ``task_ids`` has called back; a failed one raises."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: task_ids <= self.by_task.keys(), timeout):
                missing = len(task_ids - self.by_task.keys())
                raise RuntimeError(f"{missing} callbacks did not arrive in {timeout:.0f} s")
            failed = [self.by_task[t][0] for t in task_ids if not self.by_task[t][0].ok]
        if failed:
            raise RuntimeError(f"{len(failed)} conversions failed, e.g. {failed[0].message}")

    def first(self, task_id: str) -> Callback | None:
        with self.arrived:
            arrivals = self.by_task.get(task_id)
            return arrivals[0] if arrivals else None

    def repeats(self) -> Counter[str]:
        """Tasks that called back more than once, with how many times."""
        with self.arrived:
            return Counter({t: len(c) for t, c in self.by_task.items() if len(c) > 1})

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
