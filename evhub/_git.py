"""The git steps evhub takes: `save --mode full` commits the views, `migrate` stops git tracking them,
`install --local` keeps your personal files out of git."""

from __future__ import annotations

import os
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


def exclude_file(folder: Path) -> tuple[Path, str] | None:
    """The clone's own ignore file (`info/exclude`, which is never committed) of the git work tree FOLDER is
    in, and FOLDER's path from the work tree's top (empty, or ending in /); None outside a work tree or
    without git."""
    try:
        found = _git(folder, "rev-parse", "--is-inside-work-tree", "--show-prefix", "--git-path", "info/exclude")
    except OSError:
        return None
    lines = found.stdout.splitlines()
    if found.returncode != 0 or len(lines) != 3 or lines[0] != "true":
        return None
    return Path(os.path.normpath(folder / lines[2])), lines[1]
