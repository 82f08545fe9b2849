"""The one git step evhub takes: `save --mode full` commits the hub's folder."""

from __future__ import annotations

import subprocess
from pathlib import Path


def commit(root: Path, folder: str, message: str) -> str | None:
    """Commit FOLDER (relative to ROOT) when ROOT is inside a git work tree; the new commit's id,
    or None when there is no work tree, nothing to commit, or git is missing."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)

    try:
        if git("rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
            return None
        git("add", "-A", "--", folder)
        done = git("commit", "-q", "-m", message, "--", folder)
    except OSError:
        return None
    if done.returncode != 0:
        return None
    return git("rev-parse", "HEAD").stdout.strip() or None
