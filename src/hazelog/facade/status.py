"""The facade's /status: each logging instance as the facade sees it (answering and ready, in
cooldown, the last error, the messages it received) and the cluster as a ready instance's
client sees it (members, whether it is safe, the map size). JSON, or a page for a browser."""

from __future__ import annotations

import html
import time
from typing import Any

from hazelog.facade.failover import InstancePool
from hazelog.facade.metrics import FacadeMetrics

# Seconds the page waits before it reloads itself.
PAGE_REFRESH = 2


def instance_entry(
    url: str, answer: dict[str, Any] | None, pool: InstancePool, stats: FacadeMetrics
) -> dict[str, Any]:
    if answer is None:
        state, problem = "down", "no answer to GET /status"
    elif answer.get("ready") is True:
        state, problem = "ready", None
    else:
        state, problem = "not ready", str(answer.get("problem") or "not ready")
    last = stats.last_error.get(url)
    received = answer.get("messages_received") if answer else None
    return {
        "url": url,
        "state": state,
        "ready": state == "ready",
        "problem": problem,
        "in_cooldown": pool.in_cooldown(url),
        "last_error": last.error if last else None,
        "last_error_at": last.at if last else None,
        "messages_received": received if isinstance(received, int) else None,
    }


def cluster_entry(urls: list[str], answers: list[dict[str, Any] | None]) -> dict[str, Any]:
    """The cluster from the first ready instance's answer (every client sees the same one)."""
    for url, answer in zip(urls, answers, strict=True):
        if answer is not None and answer.get("ready") is True:
            return {
                "seen_by": url,
                "members": answer.get("members") or [],
                "safe": answer.get("cluster_safe"),
                "map_size": answer.get("map_size"),
            }
    return {"seen_by": None, "members": [], "safe": None, "map_size": None}


def status_document(
    pool: InstancePool, stats: FacadeMetrics, answers: list[dict[str, Any] | None]
) -> dict[str, Any]:
    return {
        "instances": [
            instance_entry(url, answer, pool, stats)
            for url, answer in zip(pool.urls, answers, strict=True)
        ],
        "cluster": cluster_entry(pool.urls, answers),
        "generated_at": time.time(),
    }


def _cell(value: Any) -> str:
    if value is None:
        return '<td class="none">-</td>'
    if isinstance(value, bool):
        return f'<td class="{"yes" if value else "no"}">{"yes" if value else "no"}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _when(at: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at)) if at is not None else ""


def render_page(document: dict[str, Any]) -> str:
    rows = []
    for entry in document["instances"]:
        state = entry["state"]
        error = entry["last_error"]
        if error is not None:
            error = f"{_when(entry['last_error_at'])} {error}"
        rows.append(
            f'<tr class="instance" data-state="{html.escape(state)}">'
            f"<td>{html.escape(entry['url'])}</td>"
            f'<td class="state {state.replace(" ", "-")}">{html.escape(state)}</td>'
            f"{_cell(entry['in_cooldown'])}{_cell(entry['messages_received'])}"
            f"{_cell(entry['problem'])}{_cell(error)}</tr>"
        )
    cluster = document["cluster"]
    members = "".join(f"<li>{html.escape(str(m))}</li>" for m in cluster["members"]) or "<li>-</li>"
    safe = cluster["safe"]
    safe_text = "unknown" if safe is None else ("safe" if safe else "NOT safe")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{PAGE_REFRESH}">
<title>hazelog status</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #bbb; padding: 0.3em 0.8em; text-align: left; }}
th {{ background: #eee; }}
.ready, .yes.safe {{ background: #c8f0c8; }}
.down {{ background: #f4b8b8; font-weight: bold; }}
.not-ready {{ background: #f8e0a0; }}
.none {{ color: #888; }}
</style></head>
<body>
<h1>hazelog status</h1>
<h2>Logging instances</h2>
<table id="instances">
<tr><th>instance</th><th>state</th><th>in cooldown</th><th>messages received</th>
<th>problem</th><th>last error (facade)</th></tr>
{"".join(rows)}
</table>
<h2>Cluster</h2>
<p id="cluster-safe">Cluster: <b>{safe_text}</b>; map size:
<b id="map-size">{html.escape(str(cluster["map_size"]))}</b>
(seen by {html.escape(str(cluster["seen_by"]))})</p>
<ul id="members">{members}</ul>
<p><small>Generated {_when(document["generated_at"])}; JSON: GET /status with
Accept: application/json.</small></p>
</body></html>
"""
