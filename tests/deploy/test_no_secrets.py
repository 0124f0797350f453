"""No secret in the repository: no private key in any tracked file, and the keys Vagrant makes
for each host (under .vagrant/) are ignored by git."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")


def git(*args: str) -> subprocess.CompletedProcess[bytes]:
    git_path = shutil.which("git")
    require(git_path is not None, "git is missing")
    require((REPO / ".git").exists(), f"{REPO} is not a git checkout")
    assert git_path is not None
    return subprocess.run([git_path, *args], cwd=REPO, capture_output=True, check=False)


def test_no_tracked_file_holds_a_private_key() -> None:
    listed = git("ls-files", "-z")
    assert listed.returncode == 0, listed.stderr
    tracked = [name for name in listed.stdout.decode().split("\0") if name]
    assert tracked, "git lists no files"
    offenders = [
        name
        for name in tracked
        if (REPO / name).is_file() and PRIVATE_KEY.search((REPO / name).read_bytes())
    ]
    assert offenders == []


def test_the_vagrant_keys_are_ignored() -> None:
    for path in (".vagrant/machines/logging1/lxc/private_key", ".vagrant/known_hosts"):
        assert git("check-ignore", "-q", path).returncode == 0, f"{path} is not git-ignored"
