"""ansible-playbook as the deploy tests run it: the venv's binary, from the repo root (where
ansible.cfg is), output captured without colour codes so messages can be matched."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin/ansible-playbook"


def ansible_playbook(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    require(ANSIBLE_PLAYBOOK.exists(), f"{ANSIBLE_PLAYBOOK} is missing (pip install -e '.[dev]')")
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
    )
