"""Helpers under the lab: mount table parsing, console tails, safe writes into a machine's
root, cgroup bookkeeping on a fake cgroup tree, ssh command lines and the status table."""

from __future__ import annotations

import shutil
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from hazelog.lab import cgroups
from hazelog.lab.cli import format_table
from hazelog.lab.errors import LabError
from hazelog.lab.lab import HostStatus
from hazelog.lab.ssh import ensure_keypair, key_path, public_key, ssh_argv
from hazelog.lab.system import last_line, mounts_under, tail, write_inside
from tests.conftest import require

MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
90 22 0:50 / /work/.lab/machines/a/merged rw shared:40 - overlay overlay rw,lowerdir=/i
91 90 0:51 / /work/.lab/machines/a/merged/proc rw shared:41 - proc proc rw
92 22 0:52 / /work/.lab/machines/b\\040x/merged rw shared:42 - overlay overlay rw
93 22 0:53 / /work/.lab-other/merged rw shared:43 - overlay overlay rw
"""


def test_mounts_under_a_path_come_deepest_first_and_unescaped() -> None:
    found = mounts_under(Path("/work/.lab"), MOUNTINFO)
    assert found == [
        Path("/work/.lab/machines/a/merged/proc"),
        Path("/work/.lab/machines/a/merged"),
        Path("/work/.lab/machines/b x/merged"),
    ]
    assert mounts_under(Path("/elsewhere"), MOUNTINFO) == []


def test_tail_gives_the_last_lines_without_terminal_colours(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    lines = [f"\x1b[0;32m  OK  \x1b[0m] Started unit{i}.service" for i in range(40)]
    log.write_text("\n".join(lines) + "\n\n")
    result = tail(log, 3)
    assert result == [f"  OK  ] Started unit{i}.service" for i in (37, 38, 39)]
    assert tail(tmp_path / "none.log") == [f"(no log at {tmp_path / 'none.log'})"]


def test_last_line_skips_blank_lines() -> None:
    assert last_line("first\nmount: wrong fs type\n\n") == "mount: wrong fs type"
    assert last_line("") == "failed without a message"


def test_write_inside_replaces_a_symlink_instead_of_following_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "controller-hosts"
    outside.write_text("precious\n")
    (root / "etc/hosts").symlink_to(outside)
    write_inside(root, "etc/hosts", "10.0.0.1 a\n")
    assert outside.read_text() == "precious\n"
    assert not (root / "etc/hosts").is_symlink()
    assert (root / "etc/hosts").read_text() == "10.0.0.1 a\n"


def test_write_inside_refuses_a_symlinked_directory(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    elsewhere = tmp_path / "controller-root-ssh"
    elsewhere.mkdir()
    (root / "root").mkdir()
    (root / "root/.ssh").symlink_to(elsewhere)
    with pytest.raises(LabError, match="symlink"):
        write_inside(root, "root/.ssh/authorized_keys", "ssh-ed25519 AAAA x\n", mode=0o600)
    assert list(elsewhere.iterdir()) == []


def test_write_inside_creates_directories_with_the_given_mode(tmp_path: Path) -> None:
    write_inside(tmp_path, "root/.ssh/authorized_keys", "k\n", mode=0o600, dir_mode=0o700)
    assert (tmp_path / "root/.ssh").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "root/.ssh/authorized_keys").stat().st_mode & 0o777 == 0o600


def fake_hybrid_cgroups(root: Path) -> None:
    for hierarchy in ("systemd", "unified", "memory", "cpu"):
        (root / hierarchy).mkdir(parents=True)
        (root / hierarchy / "cgroup.procs").write_text("1\n")


def test_cgroups_per_machine_in_each_hybrid_hierarchy(tmp_path: Path) -> None:
    fake_hybrid_cgroups(tmp_path)
    assert cgroups.hierarchies(tmp_path) == [tmp_path / h for h in ("systemd", "unified", "memory")]
    procs = cgroups.create("logging1", tmp_path)
    assert procs == [tmp_path / h / "hazelog-lab-logging1/cgroup.procs" for h in cgroups._HYBRID]


def test_cgroup_processes_are_collected_from_the_whole_tree(tmp_path: Path) -> None:
    fake_hybrid_cgroups(tmp_path)
    top = tmp_path / "systemd/hazelog-lab-facade"
    (top / "payload/init.scope").mkdir(parents=True)
    (top / "cgroup.procs").write_text("100\n")
    (top / "payload/cgroup.procs").write_text("")
    (top / "payload/init.scope/cgroup.procs").write_text("101\n102\n")
    (tmp_path / "systemd/hazelog-lab-idle").mkdir()
    (tmp_path / "systemd/hazelog-lab-idle/cgroup.procs").write_text("")
    (tmp_path / "memory/hazelog-lab-facade").mkdir()
    (tmp_path / "memory/hazelog-lab-facade/memory.usage_in_bytes").write_text("20971520\n")
    assert cgroups.processes("facade", tmp_path) == {100, 101, 102}
    assert cgroups.running_lab_machines(tmp_path) == {"facade"}
    assert cgroups.memory_bytes("facade", tmp_path) == 20971520
    assert cgroups.memory_bytes("idle", tmp_path) is None


def test_pure_cgroup_v2_uses_one_directory(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    assert cgroups.machine_cgroups("m", tmp_path) == [tmp_path / "hazelog-lab-m"]


def test_ssh_argv_uses_the_lab_key_as_root_and_keeps_the_command() -> None:
    argv = ssh_argv(Path("/k/id_ed25519"), IPv4Address("192.168.77.21"), ["echo", "$HOME"])
    assert argv[0] == "ssh"
    assert argv[argv.index("-i") + 1] == "/k/id_ed25519"
    assert "BatchMode=yes" in argv
    assert argv[-4:] == ["root@192.168.77.21", "--", "echo", "$HOME"]
    assert ssh_argv(Path("/k"), IPv4Address("192.168.77.21"))[-1] == "root@192.168.77.21"


def test_the_lab_key_is_made_once(tmp_path: Path) -> None:
    require(shutil.which("ssh-keygen") is not None, "ssh-keygen (openssh-client) is missing")
    private = ensure_keypair(tmp_path)
    assert private == key_path(tmp_path)
    first = public_key(private)
    assert first.startswith("ssh-ed25519 ")
    assert private.stat().st_mode & 0o777 == 0o600
    assert ensure_keypair(tmp_path) == private
    assert public_key(private) == first
    assert sorted(p.name for p in private.parent.iterdir()) == ["id_ed25519", "id_ed25519.pub"]


def test_status_table_lines_up_columns() -> None:
    rows = [
        HostStatus("facade", "192.168.77.10", "running", 4242, 20 * 2**20),
        HostStatus("logging1", "192.168.77.21", "stopped", None, None),
    ]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == ["HOST", "ADDRESS", "STATE", "PID", "MEMORY"]
    assert lines[1].split() == ["facade", "192.168.77.10", "running", "4242", "20", "MiB"]
    assert lines[2].split() == ["logging1", "192.168.77.21", "stopped", "-", "-"]
    assert lines[1].index("192.168.77.10") == lines[2].index("192.168.77.21")
