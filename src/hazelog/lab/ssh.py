"""The lab's SSH key pair (per checkout, gitignored) and ssh command lines into the hosts."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from ipaddress import IPv4Address
from pathlib import Path

from hazelog.lab.system import run

# Host keys change whenever a clone is recreated, so known_hosts would only get in the way.
SSH_OPTIONS = (
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
    "-o", "IdentitiesOnly=yes",
    "-o", "BatchMode=yes",
)  # fmt: skip


def key_path(state_dir: Path) -> Path:
    return state_dir / "ssh" / "id_ed25519"


def ensure_keypair(state_dir: Path) -> Path:
    """The lab's private key, generated on first use. The public half is renamed into place
    before the private one, so an existing private key always has its public key."""
    private = key_path(state_dir)
    public = private.with_suffix(".pub")
    if private.is_file() and public.is_file():
        return private
    private.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = private.with_name(f".{private.name}.tmp-{os.getpid()}")
    tmp_public = Path(f"{tmp}.pub")
    for leftover in private.parent.glob(f".{private.name}.tmp-*"):
        leftover.unlink()  # from an interrupted run
    run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hazelog-lab", "-f", str(tmp)],
        what="generate the lab SSH key",
    )
    os.replace(tmp_public, public)
    os.replace(tmp, private)
    return private


def public_key(private: Path) -> str:
    return private.with_suffix(".pub").read_text().strip()


def ssh_argv(
    key: Path, address: IPv4Address, command: Sequence[str] = (), connect_timeout: int = 5
) -> list[str]:
    """ssh as root into a lab host. Like ssh itself, the command words are joined with spaces
    and run by the remote shell, and ssh exits with the remote command's exit code."""
    return [
        "ssh",
        "-i",
        str(key),
        *SSH_OPTIONS,
        "-o",
        f"ConnectTimeout={connect_timeout}",
        f"root@{address}",
        *(["--", *command] if command else []),
    ]


def probe(key: Path, address: IPv4Address) -> bool:
    """Does sshd on the host accept the lab key?"""
    try:
        result = subprocess.run(
            ssh_argv(key, address, ["true"], connect_timeout=2),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0
