"""The PNG: throughput by stage and concurrency; GET latency by log size."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure as Canvas

from hazelog_tools.bench.results import Figure


def plot(throughput: Sequence[Figure], by_size: Sequence[Figure], path: Path, title: str) -> None:
    measured = [f for f in throughput if f.runs]
    sized = [f for f in by_size if f.runs and f.size]
    panels = int(bool(measured)) + int(bool(sized))
    if panels == 0:
        return
    canvas = Canvas(figsize=(7 * panels, 4.8), layout="constrained")
    axes = canvas.subplots(1, panels, squeeze=False)[0]
    index = 0
    if measured:
        _throughput(axes[index], measured)
        index += 1
    if sized:
        _by_size(axes[index], sized)
    canvas.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.savefig(path, dpi=110)


def _throughput(ax: Axes, figures: Sequence[Figure]) -> None:
    stages = list(dict.fromkeys(f.stage for f in figures))
    levels = sorted({f.concurrency for f in figures})
    width = 0.8 / len(levels)
    for i, level in enumerate(levels):
        xs, heights = [], []
        for s, stage in enumerate(stages):
            for f in figures:
                if f.stage == stage and f.concurrency == level:
                    xs.append(s + (i - (len(levels) - 1) / 2) * width)
                    heights.append(f.rps)
        bars = ax.bar(xs, heights, width, label=f"concurrency {level}")
        ax.bar_label(bars, fmt="%.0f", fontsize=6, rotation=90, padding=2)
    ax.set_xticks(range(len(stages)), [s.replace(" (", "\n(") for s in stages], fontsize=7)
    ax.set_ylabel("requests/s (median of runs)")
    ax.set_title("Throughput by stage")
    ax.margins(y=0.15)
    ax.legend(fontsize=7)


def _by_size(ax: Axes, figures: Sequence[Figure]) -> None:
    for stage in dict.fromkeys(f.stage for f in figures):
        points = sorted((f.size or 0, f.p50_ms) for f in figures if f.stage == stage)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{stage} p50")
        # Linear growth from the smallest size: a curve above this line grows worse than linear.
        first_size, first_ms = points[0]
        ax.plot(
            [p[0] for p in points],
            [first_ms * p[0] / first_size for p in points],
            linestyle=":",
            color="grey",
            linewidth=0.8,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("messages stored")
    ax.set_ylabel("GET latency p50 (ms), concurrency 1")
    ax.set_title("GET latency by log size (dotted: linear)")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", linewidth=0.3)
