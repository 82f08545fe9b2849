"""The git steps evhub takes: `save --mode full` commits the views, `migrate` stops git tracking them."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)


def untrack(root: Path, folder: str) -> bool:
    """Stop git tracking FOLDER (relative to ROOT), staged and not committed, its files left on disk;
    whether git tracked anything there."""
    try:
        if not _git(root, "ls-files", "--", folder).stdout.strip():
            return False
        return _git(root, "rm", "-r", "-q", "--cached", "--", folder).returncode == 0
    except OSError:
        return False


def commit(root: Path, folder: str, message: str) -> str | None:
    """Commit FOLDER (relative to ROOT) when ROOT is inside a git work tree; the new commit's id,
    or None when there is no work tree, nothing to commit, or git is missing."""
    try:
        if _git(root, "rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
            return None
        _git(root, "add", "-A", "--", folder)
        done = _git(root, "commit", "-q", "-m", message, "--", folder)
    except OSError:
        return None
    if done.returncode != 0:
        return None
    return _git(root, "rev-parse", "HEAD").stdout.strip() or None
