"""`python -m hazelog_tools.bench` (`make bench`): run the benchmark, print the table, write the
JSON file and the plot."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import click
import uvloop

from hazelog_tools.bench.plot import plot
from hazelog_tools.bench.results import report_text
from hazelog_tools.bench.runner import Bench, Plan, Report, Stage


def _numbers(value: str) -> tuple[int, ...]:
    try:
        numbers = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise click.BadParameter(f"not a comma-separated list of integers: {value!r}") from exc
    if any(n < 1 for n in numbers):
        raise click.BadParameter("every number must be at least 1")
    return numbers


def _stages(value: str) -> tuple[Stage, ...]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    known = {stage.value for stage in Stage}
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise click.BadParameter(
            f"unknown stage(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(sorted(known))}"
        )
    return tuple(Stage(name) for name in names)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def write_outputs(report: Report, out_dir: Path) -> tuple[str, Path, Path]:
    """The table text, and where the JSON file and the plot went."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = report.as_json()
    json_path = out_dir / "latest.json"
    json_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    stamp = str(data["meta"]["started"]).replace(":", "")
    (out_dir / f"bench-{stamp}.json").write_text(json.dumps(data, indent=2) + "\n")
    png_path = out_dir / "latest.png"
    load = data["meta"].get("loadavg_start", [])
    title = (
        f"hazelog bench {data['meta']['started']} on {data['meta']['cpus']} CPUs "
        f"(load average at start {load[0] if load else '?'}); medians of "
        f"{data['meta']['plan']['runs']} runs"
    )
    plot(report.throughput, report.by_size, png_path, title)
    table = report_text(report.throughput, report.by_size, report.targets, report.recoveries)
    return table, json_path, png_path


@click.command(name="bench")
@click.option(
    "--stages",
    default=",".join(stage.value for stage in Stage),
    show_default=True,
    help="Which loads to run (comma-separated).",
)
@click.option("--concurrency", default="1,16,64", show_default=True, help="Connections/tasks.")
@click.option(
    "--sizes", default="1000,10000,100000", show_default=True, help="Log sizes for GET latency."
)
@click.option("--duration", type=click.FloatRange(min=1), default=5.0, show_default=True)
@click.option(
    "--size-duration",
    type=click.FloatRange(min=1),
    default=5.0,
    show_default=True,
    help="Seconds per GET-by-size run.",
)
@click.option(
    "--warmup",
    type=click.FloatRange(min=1),
    default=1.0,
    show_default=True,
    help="Least seconds of warm-up per throughput stage (at least 3 runs of --duration), and "
    "the seconds of the GET warm-ups.",
)
@click.option(
    "--warmup-max",
    type=click.FloatRange(min=1),
    default=90.0,
    show_default=True,
    help="Most seconds of warm-up per throughput stage: it ends sooner once the throughput "
    "stops climbing.",
)
@click.option("--runs", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--get-size",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Messages stored while the end-to-end GET throughput is measured.",
)
@click.option(
    "--jar",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".cache/artifacts/hazelcast-5.7.0.jar"),
    show_default=True,
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-results"),
    show_default=True,
    help="latest.json, latest.png, a timestamped JSON copy, and the processes' logs.",
)
def bench(
    stages: str,
    concurrency: str,
    sizes: str,
    duration: float,
    size_duration: float,
    warmup: float,
    warmup_max: float,
    runs: int,
    get_size: int,
    jar: Path,
    out_dir: Path,
) -> None:
    """Throughput and latency of every hazelog hop and of its baselines, in one run."""
    plan = Plan(
        stages=_stages(stages),
        concurrency=_numbers(concurrency),
        sizes=_numbers(sizes) if sizes.strip() else (),
        duration=duration,
        size_duration=size_duration,
        warmup=warmup,
        warmup_max=warmup_max,
        runs=runs,
        get_size=get_size,
        jar=jar,
        work_dir=out_dir / "work",
    )
    # SIGTERM stops the bench like Ctrl-C does: through the cleanup that stops the topology.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    bench = Bench(plan, _progress)
    failure = run(bench)
    report = bench.report
    table, json_path, png_path = write_outputs(report, out_dir)
    click.echo(table, nl=False)
    click.echo(f"\nJSON: {json_path}  plot: {png_path}  wall time: {report.meta['wall_s']} s")
    if failure is not None:
        raise click.ClickException(f"the benchmark stopped early: {failure}")


def run(bench: Bench) -> str | None:
    """Run the bench; what went wrong, if it stopped early (what it measured is kept)."""
    # The same event loop the services run on (Sanic uses uvloop), for the client stage.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            runner.run(bench.run())
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            bench.report.meta["error"] = error
            return error
    return None


def main(argv: Sequence[str] | None = None) -> None:
    bench.main(
        args=list(argv) if argv is not None else None, prog_name="python -m hazelog_tools.bench"
    )
