"""Deploys that cannot take the cluster down (issue 12, items 1-3), on the Vagrant hosts.

- `site.yml --check --diff` on the converged deployment changes nothing.
- A member JVM option the JVM refuses, given through the inventory's variables: the play
  fails at the first member, naming it; the other members and instances are never restarted
  (same PID and InvocationID), the facade serves throughout; the next run with the good
  options converges.
- A corrupt wheel: the play fails, every unit keeps running the live release; a good new
  wheelhouse then switches every host to a new release; playbooks/rollback.yml goes back.

On the session's deployed lab (tests/deploy/conftest.py).
Figures go to the terminal and .cache/figures/.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.deploy.ansible import ansible_playbook
from tests.deploy.figures import report_figures
from tests.deploy.lab import (
    RECOVERY_TIMEOUT,
    Lab,
    http,
    stored_messages,
    wait_until,
    whole_and_safe,
)
from tests.deploy.load import Load
from tests.deploy.network import REPO

pytestmark = pytest.mark.deploy

ARTIFACTS = REPO / ".cache/artifacts"
WHEELHOUSE = ARTIFACTS / "wheelhouse"
RATE = 20.0
CURRENT = "/opt/hazelog/current"
# The plays a new release of the code goes through (README, "Targeting").
RELEASE_TAGS = ("--tags", "app,logging,messages,facade")
PREVIOUS = "/opt/hazelog/previous"
# hazelcast_jvm_options' defaults plus one option the JVM refuses at start.
BAD_OPTION = "-XX:+HazelogNoSuchOption"
GOOD_JVM_OPTIONS = [
    "-Xms128m",
    "-Xmx{{ hazelcast_heap_mb }}m",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-UsePerfData",
    "-Djava.net.preferIPv4Stack=true",
]
_RECAP = re.compile(r"^(?P<host>\S+)\s*:\s*ok=\d+\s+changed=(?P<changed>\d+)", re.MULTILINE)


def playbook(*args: str) -> tuple[int, str, float]:
    """(exit code, output, seconds) of ansible-playbook ARGS against the Vagrant hosts."""
    started = time.monotonic()
    result = ansible_playbook(*args, timeout=1800)
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


def recap_changed(output: str) -> dict[str, int]:
    return {m["host"]: int(m["changed"]) for m in _RECAP.finditer(output)}


def service_hosts(lab: Lab) -> list[str]:
    return [lab.facade_host, lab.messages_host, *dict.fromkeys(i.host for i in lab.instances)]


def host_units(lab: Lab, host: str) -> list[str]:
    if host == lab.facade_host:
        return ["facade.service"]
    if host == lab.messages_host:
        return ["messages.service"]
    return [unit for i in lab.instances if i.host == host for unit in i.units]


def unit_ids(lab: Lab) -> dict[str, tuple[str, str]]:
    """ "host unit" -> (MainPID, InvocationID) of every hazelog unit."""
    ids = {}
    for host in service_hosts(lab):
        units = host_units(lab, host)
        output = lab.ssh(host, f"systemctl show -p MainPID -p InvocationID {' '.join(units)}")
        # One block of NAME=VALUE lines per unit, in the order asked, blank line between.
        blocks = [dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
                  for block in output.stdout.strip().split("\n\n")]  # fmt: skip
        assert len(blocks) == len(units), output.stdout
        for unit, block in zip(units, blocks, strict=True):
            ids[f"{host} {unit}"] = (block["MainPID"], block["InvocationID"])
    return ids


def release_of(lab: Lab, host: str, link: str = CURRENT) -> str:
    return lab.ssh(host, f"readlink {link}").stdout.strip()


def running_releases(lab: Lab) -> dict[str, str]:
    """ "host unit" -> the release directory the unit's running process was started from
    (the venv interpreter of the shebang, argv[0])."""
    releases = {}
    for key, (pid, _) in unit_ids(lab).items():
        host, unit = key.split(" ")
        if unit.startswith("hazelcast@"):
            continue
        argv = lab.ssh(host, f"cat /proc/{pid}/cmdline").stdout.split("\0")
        releases[key] = str(Path(argv[0]).parent.parent)
    return releases


def post_and_get(lab: Lab, text: str) -> None:
    status, _, body = http("POST", lab.facade_url, text.encode(), {"Content-Type": "text/plain"})
    assert status == 201, (status, body[:300])
    uuid = json.loads(body)["uuid"]
    assert uuid in {m["uuid"] for m in stored_messages(lab)}


def under_load(lab: Lab, prefix: str, *args: str) -> tuple[int, str, float, dict[str, int]]:
    """Run ansible-playbook ARGS while a steady POST load runs; the load's figures."""
    before = {m["uuid"] for m in stored_messages(lab)}
    running = Load(
        lab.facade_url,
        max_requests=int(1800 * RATE),
        duration=1800,
        concurrency=4,
        rate=RATE,
        prefix=prefix,
    ).start()
    try:
        wait_until(lambda: running.completed() >= 20, 60, "20 requests sent")
        code, output, took = playbook(*args)
        time.sleep(2)
    finally:
        running.stop()
    result = running.result
    stored = {m["uuid"] for m in stored_messages(lab)}
    acked = {o.uuid for o in result.acknowledged}
    figures = {
        "sent": len(result.outcomes),
        "acknowledged": len(acked),
        "failed": len(result.failed),
        "lost": len(acked - stored),
        "earlier_lost": len(before - stored),
    }
    return code, output, took, figures


def test_check_diff_on_the_converged_deployment_changes_nothing(
    lab: Lab, request: pytest.FixtureRequest
) -> None:
    code, output, took = playbook("site.yml", "--check", "--diff")
    changed = recap_changed(output)
    report_figures(
        request.config, "safe-deploys-check", {"rc": code, "seconds": round(took), **changed}
    )
    assert code == 0, output[-5000:]
    assert set(changed) >= set(service_hosts(lab)), changed
    assert set(changed.values()) == {0}, changed


def test_tags_run_one_part_only(lab: Lab) -> None:
    code, output, _ = playbook("site.yml", "--tags", "facade", "--check")
    assert code == 0, output[-5000:]
    # Ansible prints every play's header and runs every role's argument check (tagged
    # always); the other tasks show which roles ran.
    ran = {
        line.split("[", 1)[1].split(" :", 1)[0]
        for line in output.splitlines()
        if line.startswith("TASK [") and " : " in line and "Validating arguments" not in line
    }
    # roles/common's tasks are the ones facade_service imports from it.
    assert ran == {"facade_service", "common"}, ran


def test_a_bad_member_option_stops_the_play_at_the_first_member(
    lab: Lab, request: pytest.FixtureRequest
) -> None:
    first = lab.instances[0]
    others = [i for i in lab.instances if i.host != first.host]
    before = unit_ids(lab)
    code, output, took, figures = under_load(
        lab,
        "bad-option",
        "site.yml",
        "-e",
        json.dumps({"hazelcast_jvm_options": [*GOOD_JVM_OPTIONS, BAD_OPTION]}),
    )
    after = unit_ids(lab)
    untouched = [k for k in before if not k.startswith(f"{first.host} ") and before[k] == after[k]]
    report_figures(
        request.config,
        "safe-deploys-bad-member-option",
        {"rc": code, "playbook_s": round(took), **figures, "untouched_units": len(untouched)},
    )
    assert code != 0, output[-5000:]
    # The failure names the host, the member that did not come back and its journal (the cause).
    assert f"fatal: [{first.host}]: FAILED!" in output, output[-5000:]
    gate_failure = f"{first.host}: hazelcast@{first.port}.service did not come back"
    assert gate_failure in output, output[-5000:]
    assert BAD_OPTION.removeprefix("-XX:+") in output, output[-5000:]
    # Nothing of the other logging hosts was restarted, nor even rewritten.
    for instance in others:
        for unit in instance.units:
            key = f"{instance.host} {unit}"
            assert after[key] == before[key], (key, before[key], after[key])
        unit_file = lab.ssh(instance.host, "cat /etc/systemd/system/hazelcast@.service").stdout
        assert BAD_OPTION not in unit_file, instance.host
    assert after[f"{lab.facade_host} facade.service"] == before[f"{lab.facade_host} facade.service"]
    # The facade served throughout, from the other instances.
    assert figures["failed"] == 0, figures
    assert figures["lost"] == 0, figures
    assert figures["earlier_lost"] == 0, figures
    post_and_get(lab, "after the failed deploy")

    # Fixed: the next run of the members' and instances' plays (the instance stopped with its
    # member) converges, and still leaves the other hosts' units alone.
    fixed_code, fixed_output, _ = playbook("site.yml", "--tags", "hazelcast,logging")
    assert fixed_code == 0, fixed_output[-5000:]
    wait_until(lambda: whole_and_safe(lab), RECOVERY_TIMEOUT, "the cluster whole after the fix")
    fixed = unit_ids(lab)
    for instance in others:
        for unit in instance.units:
            key = f"{instance.host} {unit}"
            assert fixed[key] == before[key], (key, before[key], fixed[key])
    post_and_get(lab, "after the fixed deploy")


def wheelhouse_copy(name: str) -> Path:
    target = REPO / ".cache/test-wheelhouses" / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(WHEELHOUSE, target)
    return target


def test_a_corrupt_wheel_keeps_the_live_release_then_a_good_one_switches_and_rolls_back(
    lab: Lab, request: pytest.FixtureRequest
) -> None:
    hosts = service_hosts(lab)
    live = {host: release_of(lab, host) for host in hosts}
    assert all(live.values()), live
    before = unit_ids(lab)
    messages_before = {m["uuid"] for m in stored_messages(lab)}

    corrupt = wheelhouse_copy("corrupt")
    wheel = next(corrupt.glob("hazelog-*.whl"))
    data = wheel.read_bytes()
    wheel.write_bytes(data[: len(data) // 2])
    code, output, took = playbook("site.yml", "-e", f"hazelog_app_wheelhouse_src={corrupt}")
    assert code != 0, output[-5000:]
    assert "Nothing was switched" in output, output[-5000:]
    assert {host: release_of(lab, host) for host in hosts} == live
    assert unit_ids(lab) == before
    post_and_get(lab, "after the corrupt wheel")
    figures: dict[str, object] = {"corrupt_rc": code, "corrupt_s": round(took)}

    # A good wheelhouse with a different manifest: a new release on every host.
    good = wheelhouse_copy("good")
    with (good / "requirements.txt").open("a", encoding="utf-8") as requirements:
        requirements.write("# a new release of the same code\n")
    code, output, took, load_figures = under_load(
        lab, "new-release", "site.yml", *RELEASE_TAGS, "-e", f"hazelog_app_wheelhouse_src={good}"
    )
    figures |= {"switch_rc": code, "switch_s": round(took), **load_figures}
    assert code == 0, output[-5000:]
    wait_until(lambda: whole_and_safe(lab), RECOVERY_TIMEOUT, "the cluster after the switch")
    new = {host: release_of(lab, host) for host in hosts}
    assert all(new[h] != live[h] for h in hosts), (live, new)
    assert {host: release_of(lab, host, PREVIOUS) for host in hosts} == live
    switched = running_releases(lab)
    assert all(switched[k] == new[k.split(" ")[0]] for k in switched), (new, switched)
    # The single facade restarts onto the new release: POSTs in that moment may be refused
    # (counted in the figures), but nothing acknowledged is lost.
    assert load_figures["lost"] == 0, load_figures
    assert load_figures["earlier_lost"] == 0, load_figures

    # Rollback: every unit runs the first release again.
    code, output, took = playbook("playbooks/rollback.yml")
    figures |= {"rollback_rc": code, "rollback_s": round(took)}
    assert code == 0, output[-5000:]
    wait_until(lambda: whole_and_safe(lab), RECOVERY_TIMEOUT, "the cluster after the rollback")
    assert {host: release_of(lab, host) for host in hosts} == live
    rolled_back = running_releases(lab)
    assert all(rolled_back[k] == live[k.split(" ")[0]] for k in rolled_back), rolled_back
    assert messages_before <= {m["uuid"] for m in stored_messages(lab)}
    post_and_get(lab, "after the rollback")

    # The repository's wheelhouse is the live release again: its plays change nothing.
    code, output, _ = playbook("site.yml", *RELEASE_TAGS)
    figures |= {"restore_rc": code, "restore_changed": sum(recap_changed(output).values())}
    report_figures(request.config, "safe-deploys-release", figures)
    assert code == 0, output[-5000:]
    assert figures["restore_changed"] == 0, output[-5000:]
    assert {host: release_of(lab, host) for host in hosts} == live


JOURNAL_MESSAGES = 6000
JOURNAL_CONCURRENCY = 32
_RECEIPT = re.compile(r"^received (?P<uuid>[0-9a-f-]{36}): (?P<msg>.*)$")


def receipts(lab: Lab, since: int, prefix: str, hosts: set[str] | None = None) -> list[str]:
    """UUIDs of the receipt lines (one per message a logging instance received) whose message
    starts with `prefix`, across the logging instances' journals since `since` (epoch s)."""
    found = []
    for instance in lab.instances:
        if hosts is not None and instance.host not in hosts:
            continue
        journal = lab.ssh(
            instance.host,
            f"journalctl --unit=logging@{instance.port}.service --since=@{since} "
            "--output=cat --no-pager",
            timeout=300,
        ).stdout
        for line in journal.splitlines():
            match = _RECEIPT.match(line)
            if match and match["msg"].startswith(prefix):
                found.append(match["uuid"])
    return found


def suppressed_lines(lab: Lab, host: str, since: int) -> list[str]:
    """journald's own "Suppressed N messages from UNIT" lines: what its rate limit dropped."""
    journal = lab.ssh(
        host, f"journalctl --unit=systemd-journald.service --since=@{since} --output=cat --no-pager"
    ).stdout
    return [line for line in journal.splitlines() if "Suppressed" in line]


def test_the_journal_keeps_every_receipt_at_full_rate_and_across_a_host_restart(
    lab: Lab, request: pytest.FixtureRequest
) -> None:
    logging_hosts = sorted({i.host for i in lab.instances})
    for host in logging_hosts:
        # Storage=persistent took effect: the journal lives under /var/log/journal.
        assert lab.ssh(host, "find /var/log/journal -name '*.journal' -print -quit").stdout, host
    since = int(lab.ssh(logging_hosts[0], "date +%s").stdout) - 1
    prefix = f"journal-{since}"
    # As fast as the deployment takes them: no rate, many connections at once.
    load = Load(
        lab.facade_url,
        max_requests=JOURNAL_MESSAGES,
        duration=300,
        concurrency=JOURNAL_CONCURRENCY,
        prefix=prefix,
    ).start()
    load.join(timeout=360)
    result = load.result
    acknowledged = {o.uuid for o in result.acknowledged}
    first = min(o.started for o in result.outcomes)
    last = max(o.finished for o in result.outcomes)
    found = receipts(lab, since, prefix)
    suppressed = [line for host in logging_hosts for line in suppressed_lines(lab, host, since)]
    figures: dict[str, object] = {
        "sent": len(result.outcomes),
        "acknowledged": len(acknowledged),
        "post_per_s": round(len(result.outcomes) / (last - first)),
        "receipt_lines": len(found),
        "suppressed_lines": len(suppressed),
    }
    assert len(acknowledged) == JOURNAL_MESSAGES, figures
    assert acknowledged <= set(found), figures
    assert not suppressed, suppressed[:5]

    # A host restart keeps them: the journal is on disk.
    host = lab.instances[0].host
    on_host = sorted(receipts(lab, since, prefix, {host}))
    assert on_host, figures
    lab.halt(host)
    lab.up(host)
    wait_until(lambda: whole_and_safe(lab), RECOVERY_TIMEOUT, f"the cluster after {host} restarted")
    figures |= {f"{host}_receipts_before_restart": len(on_host)}
    after = sorted(receipts(lab, since, prefix, {host}))
    figures |= {f"{host}_receipts_after_restart": len(after)}
    report_figures(request.config, "safe-deploys-journal", figures)
    assert after == on_host, figures
    post_and_get(lab, "after the host restart")
