"""A bounded load generator for the reliability tests: POSTs numbered messages to the facade.

Bounded three ways: a request count, a time limit and a concurrency (plus an optional rate).
It refuses any target but loopback and the Vagrant hosts' network on its local bridge. Every
request is recorded: when it started, how long it took, its status, the UUID of a 201. The
tests run it in a background thread while they kill things, then compare the acknowledged
UUIDs with what GET returns.

    python -m tests.deploy.load http://192.168.56.10:8080/ --requests 500 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.deploy.network import TargetNotAllowed, check_address


def check_target(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    check_address("127.0.0.1" if host == "localhost" else host)


@dataclass(frozen=True)
class Outcome:
    """One request. Times are seconds on the run's monotonic clock (0 = start of the run)."""

    index: int
    message: str
    started: float
    latency: float
    status: int | None  # None: no HTTP answer (connection error, timeout)
    uuid: str | None
    error: str | None

    @property
    def acknowledged(self) -> bool:
        return self.status == 201 and self.uuid is not None

    @property
    def finished(self) -> float:
        return self.started + self.latency


@dataclass
class LoadResult:
    outcomes: list[Outcome]
    marks: dict[str, float] = field(default_factory=dict)

    @property
    def acknowledged(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.acknowledged]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.acknowledged]

    def during(self, start: float, end: float) -> list[Outcome]:
        """Requests in flight at some moment between `start` and `end`."""
        return [o for o in self.outcomes if o.started <= end and o.finished >= start]

    def max_latency(self, window: tuple[float, float] | None = None) -> float:
        chosen = self.outcomes if window is None else self.during(*window)
        return max((o.latency for o in chosen), default=0.0)

    def summary(self, window: tuple[float, float] | None = None) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "sent": len(self.outcomes),
            "acknowledged": len(self.acknowledged),
            "failed": len(self.failed),
            "max_latency_s": round(self.max_latency(), 3),
        }
        if window is not None:
            figures["max_latency_in_window_s"] = round(self.max_latency(window), 3)
            figures["sent_in_window"] = len(self.during(*window))
        statuses: dict[str, int] = {}
        for outcome in self.failed:
            key = str(outcome.status) if outcome.status is not None else "no answer"
            statuses[key] = statuses.get(key, 0) + 1
        if statuses:
            figures["failures"] = statuses
            figures["failure_samples"] = [
                f"#{o.index} at {o.started:.1f} s after {o.latency:.2f} s: {o.error}"
                for o in self.failed[:3]
            ]
        return figures

    def order_violations(self, stored_uuids: Sequence[str]) -> list[tuple[str, str]]:
        """Pairs (a, b) where a's 201 arrived before b was sent, yet GET lists b before a.

        Requests in flight together have no order between them; one acknowledged before
        another was even sent must come first.
        """
        position = {uuid: i for i, uuid in enumerate(stored_uuids)}
        acked = [o for o in self.acknowledged if o.uuid in position]
        by_finish = sorted(acked, key=lambda o: o.finished)
        violations: list[tuple[str, str]] = []
        # Sweep b by send time; `latest` is the acknowledged-before-b message listed last.
        latest: Outcome | None = None
        i = 0
        for b in sorted(acked, key=lambda o: o.started):
            while i < len(by_finish) and by_finish[i].finished < b.started:
                a = by_finish[i]
                if latest is None or position[str(a.uuid)] > position[str(latest.uuid)]:
                    latest = a
                i += 1
            if latest is not None and position[str(latest.uuid)] > position[str(b.uuid)]:
                violations.append((str(latest.uuid), str(b.uuid)))
        return violations


class Load:
    """Runs the load in its own thread and event loop; use as a context manager."""

    def __init__(
        self,
        url: str,
        *,
        max_requests: int,
        duration: float,
        concurrency: int = 4,
        rate: float | None = None,
        prefix: str = "load",
        request_timeout: float = 30.0,
    ) -> None:
        check_target(url)
        if max_requests < 1 or duration <= 0 or concurrency < 1:
            raise ValueError("max_requests, duration and concurrency must be positive")
        self.url = url
        self.max_requests = max_requests
        self.duration = duration
        self.concurrency = concurrency
        self.rate = rate
        self.prefix = prefix
        self.request_timeout = request_timeout
        self._outcomes: list[Outcome] = []
        self._marks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)
        self._t0 = 0.0
        self._error: BaseException | None = None

    def now(self) -> float:
        return time.monotonic() - self._t0

    def mark(self, name: str) -> float:
        """Record a moment (e.g. "kill") on the run's clock, for windows in the summary."""
        self._marks[name] = self.now()
        return self._marks[name]

    def completed(self) -> int:
        return len(self._outcomes)

    def start(self) -> Load:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        """No new requests; wait for those in flight."""
        self._stop.set()
        self.join()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(
            timeout if timeout is not None else self.duration + 2 * self.request_timeout
        )
        if self._thread.is_alive():
            raise RuntimeError("the load generator did not finish")
        if self._error is not None:
            raise self._error

    @property
    def result(self) -> LoadResult:
        if self._thread.is_alive():
            raise RuntimeError("the load is still running")
        return LoadResult(sorted(self._outcomes, key=lambda o: o.index), dict(self._marks))

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # handed to the caller's thread in join()
            self._error = exc

    async def _main(self) -> None:
        counter = iter(range(self.max_requests))
        deadline = self._t0 + self.duration
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

            async def worker() -> None:
                for index in counter:
                    if self._stop.is_set() or time.monotonic() >= deadline:
                        return
                    if self.rate is not None:
                        due = self._t0 + index / self.rate
                        if due >= deadline:
                            return
                        await asyncio.sleep(max(0.0, due - time.monotonic()))
                    self._outcomes.append(await self._post(session, index))

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    async def _post(self, session: aiohttp.ClientSession, index: int) -> Outcome:
        message = f"{self.prefix}-{index:06d}"
        started = time.monotonic()
        status: int | None = None
        uuid: str | None = None
        error: str | None = None
        try:
            async with session.post(
                self.url, data=message.encode(), headers={"Content-Type": "text/plain"}
            ) as response:
                status = response.status
                body = await response.read()
                if status == 201:
                    uuid = json.loads(body)["uuid"]
                else:
                    error = body[:200].decode("utf-8", "replace")
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        return Outcome(
            index=index,
            message=message,
            started=started - self._t0,
            latency=time.monotonic() - started,
            status=status,
            uuid=uuid,
            error=error,
        )


@contextlib.contextmanager
def running_load(url: str, **kwargs: Any) -> Iterator[Load]:
    load = Load(url, **kwargs).start()
    try:
        yield load
    finally:
        load.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("url")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rate", type=float, default=None, help="requests per second at most")
    args = parser.parse_args(argv)
    try:
        load = Load(
            args.url,
            max_requests=args.requests,
            duration=args.duration,
            concurrency=args.concurrency,
            rate=args.rate,
        ).start()
    except TargetNotAllowed as exc:
        parser.exit(2, f"load: {exc}\n")
    load.join()
    print(json.dumps(load.result.summary(), indent=2))
    return 0 if not load.result.failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
