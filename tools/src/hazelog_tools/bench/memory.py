"""Peak memory of a whole-log GET: the local topology with N stored messages, then one
`GET /` straight from a logging instance and one through the facade, with each process's peak
resident set (VmHWM) before and after.

    python -m hazelog_tools.bench.memory --messages 100000

A streamed GET keeps both peaks where they were; one built in memory raises them by about the
size of the log.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import urllib.request
from pathlib import Path

import click

from hazelog_tools.bench.processes import Topology, local_topology
from hazelog_tools.bench.storage import Storage

MIB = 1024 * 1024


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / MIB
    raise RuntimeError(f"no VmHWM for process {pid}")


def timed_get(url: str) -> tuple[float, int]:
    """Seconds and bytes of one whole-log GET, read in 64 KiB pieces as a client would."""
    started = time.perf_counter()
    size = 0
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        while chunk := response.read(64 * 1024):
            size += len(chunk)
    return time.perf_counter() - started, size


async def fill(topology: Topology, count: int) -> None:
    storage = await Storage.connect(topology.cluster_name, topology.members, topology.map_name)
    try:
        await storage.fill(count)
    finally:
        await storage.close()


def measure(topology: Topology, count: int) -> list[str]:
    asyncio.run(fill(topology, count))
    logging = topology.process(f"logging-{topology.ports.logging[0]}")
    facade = topology.process("facade")
    lines = [f"{count} messages stored"]
    for name, url in (("logging", topology.logging_url), ("facade", topology.facade_url)):
        before = {p.name: peak_rss_mib(p.pid) for p in (logging, facade)}
        seconds, size = timed_get(url)
        after = {p.name: peak_rss_mib(p.pid) for p in (logging, facade)}
        peaks = ", ".join(f"{k} {before[k]:.0f} -> {after[k]:.0f} MiB" for k in before)
        lines.append(f"GET from {name}: {seconds:.2f} s, {size / MIB:.1f} MiB; peak RSS {peaks}")
    return lines


@click.command()
@click.option("--messages", default=100_000, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--jar",
    default=".cache/artifacts/hazelcast-5.7.0.jar",
    show_default=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
def main(messages: int, jar: Path) -> None:
    """Peak memory of the logging instance and the facade around one whole-log GET."""
    with (
        tempfile.TemporaryDirectory(prefix="hazelog-memory-") as base,
        local_topology(Path(base), jar) as topology,
    ):
        for line in measure(topology, messages):
            click.echo(line)


if __name__ == "__main__":
    main()
