"""Selection, failover and cooldown, without HTTP: calls are plain coroutines."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest

from hazelog.facade.failover import (
    BackendFailure,
    InstancePool,
    NoInstanceAvailable,
    call_with_failover,
)

URLS = ["http://a/", "http://b/", "http://c/"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scripted(failing: set[str], calls: list[str]) -> Callable[[str], Awaitable[str]]:
    async def call(url: str) -> str:
        calls.append(url)
        if url in failing:
            raise BackendFailure(f"{url} is down", unreachable=True)
        return f"ok from {url}"

    return call


def test_order_is_random_among_healthy_instances() -> None:
    pool = InstancePool(URLS, cooldown=5, rng=random.Random(1))
    firsts = {pool.order()[0] for _ in range(50)}
    assert firsts == set(URLS)
    assert all(sorted(pool.order()) == sorted(URLS) for _ in range(10))


def test_failed_instance_goes_last_until_cooldown_ends() -> None:
    clock = FakeClock()
    pool = InstancePool(URLS, cooldown=5, clock=clock, rng=random.Random(2))
    pool.mark_failed("http://b/")
    assert all(pool.order()[-1] == "http://b/" for _ in range(20))
    clock.now += 4.9
    assert pool.in_cooldown("http://b/")
    clock.now += 0.2
    assert not pool.in_cooldown("http://b/")
    assert {pool.order()[0] for _ in range(50)} == set(URLS)


def test_cooling_instances_ordered_by_when_they_come_back() -> None:
    clock = FakeClock()
    pool = InstancePool(URLS, cooldown=5, clock=clock)
    pool.mark_failed("http://c/")
    clock.now += 1
    pool.mark_failed("http://a/")
    assert pool.order() == ["http://b/", "http://c/", "http://a/"]


def test_success_clears_cooldown() -> None:
    pool = InstancePool(URLS, cooldown=5, clock=FakeClock())
    pool.mark_failed("http://a/")
    pool.mark_ok("http://a/")
    assert not pool.in_cooldown("http://a/")


async def test_failover_tries_the_others_and_cools_down_the_failed() -> None:
    # Seed 5 shuffles to a, b, c: both failing instances are asked before c.
    pool = InstancePool(URLS, cooldown=5, clock=FakeClock(), rng=random.Random(5))
    calls: list[str] = []
    failing = {"http://a/", "http://b/"}
    result = await call_with_failover(pool, scripted(failing, calls), deadline=5)
    assert result == "ok from http://c/"
    assert calls == ["http://a/", "http://b/", "http://c/"]
    assert all(pool.in_cooldown(url) for url in calls[:-1])
    assert not pool.in_cooldown("http://c/")


async def test_cooling_instance_is_not_asked_first_next_time() -> None:
    pool = InstancePool(URLS, cooldown=5, clock=FakeClock())
    calls: list[str] = []
    for _ in range(20):
        await call_with_failover(pool, scripted({"http://a/"}, calls), deadline=5)
    # a fails once, then cools down: every later request succeeds elsewhere first.
    assert calls.count("http://a/") <= 1


async def test_all_failing_raises_with_every_attempt() -> None:
    pool = InstancePool(URLS, cooldown=5, clock=FakeClock())
    calls: list[str] = []
    with pytest.raises(NoInstanceAvailable) as info:
        await call_with_failover(pool, scripted(set(URLS), calls), deadline=5)
    assert sorted(calls) == sorted(URLS)
    assert [a.url for a in info.value.attempts] == calls
    assert all(a.error == f"{a.url} is down" for a in info.value.attempts)
    assert all(pool.in_cooldown(url) for url in URLS)


async def test_instances_in_cooldown_are_still_tried_when_nothing_else_is_left() -> None:
    pool = InstancePool(URLS, cooldown=5, clock=FakeClock())
    for url in URLS:
        pool.mark_failed(url)
    calls: list[str] = []
    result = await call_with_failover(pool, scripted(set(), calls), deadline=5)
    assert result == f"ok from {calls[0]}"
    assert not pool.in_cooldown(calls[0])


async def test_other_exceptions_propagate_without_failover() -> None:
    pool = InstancePool(URLS, cooldown=5, clock=FakeClock())
    calls: list[str] = []

    async def call(url: str) -> None:
        calls.append(url)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await call_with_failover(pool, call, deadline=5)
    assert len(calls) == 1
    assert not pool.in_cooldown(calls[0])


async def test_overall_deadline_cuts_a_hanging_instance() -> None:
    pool = InstancePool(["http://hang/"], cooldown=5, clock=FakeClock())

    async def hang(url: str) -> None:
        await asyncio.Event().wait()

    with pytest.raises(NoInstanceAvailable) as info:
        await call_with_failover(pool, hang, deadline=0.05)
    assert [(a.url, a.error) for a in info.value.attempts] == [("http://hang/", "timed out")]
    assert pool.in_cooldown("http://hang/")


async def test_exhausted_deadline_stops_before_the_next_instance() -> None:
    pool = InstancePool(["http://x/", "http://y/"], cooldown=5, clock=FakeClock())
    calls: list[str] = []

    async def slow_failure(url: str) -> None:
        calls.append(url)
        await asyncio.sleep(0.05)
        raise BackendFailure("slow and broken")

    with pytest.raises(NoInstanceAvailable) as info:
        await call_with_failover(pool, slow_failure, deadline=0.01)
    assert len(calls) == 1
    assert info.value.detail == "deadline of 0.01s exceeded after 1 attempt(s)"
    assert [a.error for a in info.value.attempts] == ["timed out"]


async def test_a_live_but_failing_instance_is_asked_again_within_the_deadline() -> None:
    # The last live instance answers 5xx or slowly while its member takes over dead
    # members' partitions; the others refuse connections. A second round must find it well.
    pool = InstancePool(URLS, cooldown=5, clock=FakeClock())
    calls: list[str] = []

    async def call(url: str) -> str:
        calls.append(url)
        if url != "http://b/":
            raise BackendFailure(f"{url} refused", unreachable=True)
        if calls.count(url) == 1:
            raise BackendFailure("HTTP 503")
        return "stored"

    result = await call_with_failover(pool, call, deadline=5, retry_pause=0.01)
    assert result == "stored"
    assert calls.count("http://b/") == 2
    assert set(calls[:3]) == set(URLS)  # a whole first round...
    assert calls[-1] == "http://b/"  # ...then a second, in cooldown order, until b stores it
    assert not pool.in_cooldown("http://b/")


async def test_only_unreachable_instances_fail_at_once_without_a_second_round() -> None:
    pool = InstancePool(URLS, cooldown=5, clock=FakeClock())
    calls: list[str] = []
    with pytest.raises(NoInstanceAvailable) as info:
        await call_with_failover(pool, scripted(set(URLS), calls), deadline=60)
    assert len(calls) == len(URLS)
    assert info.value.detail == "all 3 logging instance(s) failed"


async def test_rounds_stop_at_the_deadline() -> None:
    pool = InstancePool(["http://x/"], cooldown=5, clock=FakeClock())
    calls: list[str] = []

    async def failing(url: str) -> None:
        calls.append(url)
        raise BackendFailure("HTTP 500")

    with pytest.raises(NoInstanceAvailable) as info:
        await call_with_failover(pool, failing, deadline=0.1, retry_pause=0.02)
    assert 2 <= len(calls) <= 6
    assert len(info.value.attempts) == len(calls)


def test_pool_needs_an_instance_and_drops_duplicates() -> None:
    with pytest.raises(ValueError, match="at least one"):
        InstancePool([], cooldown=1)
    assert InstancePool(["http://a/", "http://a/"], cooldown=1).urls == ["http://a/"]
