"""Hedged reads (the facade's GET): a slow instance is joined by the next one rather than
abandoned; the first answer wins. Plain coroutines, no HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from hazelog.facade.failover import (
    BackendFailure,
    InstancePool,
    NoInstanceAvailable,
    call_with_hedging,
)
from tests.unit.servers import wait_until

URLS = ["http://a/", "http://b/", "http://c/"]


class InOrder:
    """Instances asked in configuration order."""

    def shuffle(self, items: list[str]) -> None:
        return None


def pool() -> InstancePool:
    return InstancePool(URLS, cooldown=60, rng=InOrder())  # type: ignore[arg-type]


Behaviour = dict[str, asyncio.Event | Exception | str]


def scripted(behaviour: Behaviour, calls: list[str]) -> Callable[[str], Awaitable[str]]:
    """Per URL: an Event (answer once it is set), an exception to raise, or an answer."""

    async def call(url: str) -> str:
        calls.append(url)
        what = behaviour.get(url, f"from {url}")
        if isinstance(what, asyncio.Event):
            await what.wait()
            return f"late from {url}"
        if isinstance(what, Exception):
            raise what
        return what

    return call


async def test_a_quick_answer_asks_nobody_else() -> None:
    calls: list[str] = []
    result = await call_with_hedging(pool(), scripted({}, calls), deadline=5, hedge_after=1)
    assert result == "from http://a/"
    assert calls == ["http://a/"]


async def test_a_failure_moves_on_at_once() -> None:
    calls: list[str] = []
    p = pool()
    behaviour: Behaviour = {"http://a/": BackendFailure("HTTP 503")}
    assert await call_with_hedging(p, scripted(behaviour, calls), 5, 1) == "from http://b/"
    assert calls == ["http://a/", "http://b/"]
    assert p.in_cooldown("http://a/")


async def test_a_hung_instance_is_joined_by_the_next_which_wins() -> None:
    calls: list[str] = []
    p = pool()
    behaviour: Behaviour = {"http://a/": asyncio.Event()}  # never set
    result = await call_with_hedging(p, scripted(behaviour, calls), 5, hedge_after=0.05)
    assert result == "from http://b/"
    assert calls == ["http://a/", "http://b/"]
    assert p.in_cooldown("http://a/")
    assert not p.in_cooldown("http://b/")


async def test_a_slow_answer_is_not_thrown_away_when_it_comes_first() -> None:
    calls: list[str] = []
    slow, slower = asyncio.Event(), asyncio.Event()
    behaviour: Behaviour = {"http://a/": slow, "http://b/": slower, "http://c/": slower}
    task = asyncio.create_task(call_with_hedging(pool(), scripted(behaviour, calls), 5, 0.05))

    async def all_asked() -> bool:
        return len(calls) == 3

    await wait_until(all_asked)
    slow.set()
    assert await task == "late from http://a/"


async def test_nothing_listening_anywhere_is_no_instance_available_after_one_round() -> None:
    calls: list[str] = []
    behaviour: Behaviour = {url: BackendFailure(f"{url} down", unreachable=True) for url in URLS}
    with pytest.raises(NoInstanceAvailable) as caught:
        await call_with_hedging(pool(), scripted(behaviour, calls), 5, 1)
    assert [a.url for a in caught.value.attempts] == URLS
    assert "all 3" in caught.value.detail


async def test_instances_alive_but_failing_are_asked_again_until_the_deadline() -> None:
    calls: list[str] = []
    behaviour: Behaviour = {url: BackendFailure(f"{url} down") for url in URLS}
    with pytest.raises(NoInstanceAvailable) as caught:
        await call_with_hedging(pool(), scripted(behaviour, calls), 0.5, 1, retry_pause=0.01)
    assert calls[:3] == URLS
    assert len(calls) > len(URLS)
    assert {a.url for a in caught.value.attempts} == set(URLS)


async def test_another_round_finds_the_instance_that_recovered() -> None:
    failures = {"n": 0}

    async def recovers_on_the_second_round(url: str) -> str:
        if url != URLS[0]:
            raise BackendFailure("refused", unreachable=True)
        failures["n"] += 1
        if failures["n"] == 1:
            raise BackendFailure("HTTP 503")
        return "from a, second round"

    result = await call_with_hedging(pool(), recovers_on_the_second_round, 5, 1, retry_pause=0.01)
    assert result == "from a, second round"


async def test_the_deadline_ends_every_attempt() -> None:
    calls: list[str] = []
    hung = asyncio.Event()
    p = pool()
    with pytest.raises(NoInstanceAvailable) as caught:
        await call_with_hedging(p, scripted(dict.fromkeys(URLS, hung), calls), 0.2, 0.05)
    assert calls == URLS
    assert {a.error for a in caught.value.attempts} == {"timed out"}
    assert all(p.in_cooldown(url) for url in URLS)
    assert "deadline" in caught.value.detail


async def test_other_errors_propagate() -> None:
    calls: list[str] = []
    behaviour: Behaviour = {"http://a/": ValueError("bug")}
    with pytest.raises(ValueError, match="bug"):
        await call_with_hedging(pool(), scripted(behaviour, calls), 5, 1)
