"""A steady load of POSTs through the facade from a few threads, recording every answer: which
messages were acknowledged (201 with their UUID) and every refusal with its body."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.integration.support import http


@dataclass(frozen=True)
class Answer:
    msg: str
    sent: float  # time.monotonic() when sent
    done: float  # ... and when answered
    status: int  # 0: no HTTP answer at all
    body: bytes


@dataclass
class PostLoad:
    url: str
    workers: int = 8
    prefix: str = "load"
    answers: list[Answer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __enter__(self) -> PostLoad:
        for _ in range(self.workers):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            # A request in flight ends within the facade's deadline plus the client timeout.
            thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                msg = f"{self.prefix}-{next(self._numbers)}"
            sent = time.monotonic()
            try:
                status, body = http(
                    "POST",
                    self.url,
                    json.dumps({"msg": msg}).encode(),
                    headers={"Content-Type": "application/json"},
                    timeout=30.0,
                )
            except OSError as exc:
                status, body = 0, str(exc).encode()
            with self._lock:
                self.answers.append(Answer(msg, sent, time.monotonic(), status, body))

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def acknowledged(self) -> dict[str, str]:
        """uuid -> msg of every 201."""
        return {json.loads(a.body)["uuid"]: a.msg for a in self.snapshot() if a.status == 201}

    def acked_after(self, moment: float) -> list[Answer]:
        return [a for a in self.snapshot() if a.status == 201 and a.done >= moment]

    def refusals(self) -> list[Answer]:
        return [a for a in self.snapshot() if a.status != 201]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition()` until true; AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.2)
