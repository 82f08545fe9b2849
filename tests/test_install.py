"""`evhub install claude`: merged into a project's own settings, idempotent, and undone exactly."""

import json
import subprocess
from pathlib import Path

from command import error_line, ok, run

from evhub._install import CLAUDE_HOOKS, HOOK_COMMAND

USER_SETTINGS = {
    "model": "claude-sonnet-4-5",
    "permissions": {"allow": ["Bash(npm test:*)"]},
    "hooks": {
        "PostToolUse": [{"matcher": "Write|Edit", "hooks": [{"type": "command", "command": "prettier --write"}]}],
        "SessionStart": [{"hooks": [{"type": "command", "command": "echo welcome", "timeout": 5}]}],
    },
}
USER_CLAUDE_MD = "# Project notes\n\nRun `npm test` before you commit.\n"


def files(project: Path) -> dict[str, bytes]:
    return {p.relative_to(project).as_posix(): p.read_bytes() for p in sorted(project.rglob("*")) if p.is_file()}


def ours(settings: dict) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    """Per event, the groups holding evhub's hook."""
    return {event: [g for g in groups if any(h.get("command") == HOOK_COMMAND for h in g["hooks"])]
            for event, groups in settings["hooks"].items()}


def test_install_merges_with_the_users_hooks_and_twice_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(USER_SETTINGS, indent=4))
    (tmp_path / "CLAUDE.md").write_text(USER_CLAUDE_MD)
    ok(run("install", "claude", "--project", tmp_path))
    settings = json.loads((tmp_path / ".claude" / "settings.json").read_text())
    assert settings["model"] == USER_SETTINGS["model"] and settings["permissions"] == USER_SETTINGS["permissions"]
    mine = ours(settings)
    assert {e for e, groups in mine.items() if len(groups) == 1} == set(CLAUDE_HOOKS)
    assert settings["hooks"]["PostToolUse"][0] == USER_SETTINGS["hooks"]["PostToolUse"][0]  # type: ignore[index]
    assert settings["hooks"]["SessionStart"][0] == USER_SETTINGS["hooks"]["SessionStart"][0]  # type: ignore[index]
    # every source: startup, resume, clear, compact (the card after a compaction) and fork
    assert "matcher" not in mine["SessionStart"][0]
    assert {e: g[0]["hooks"][0]["timeout"] for e, g in mine.items()} == {e: t for e, (_, t) in CLAUDE_HOOKS.items()}
    assert mine["SessionEnd"][0]["hooks"][0]["timeout"] > 1.5, "above SessionEnd's default budget, which it raises"
    md = (tmp_path / "CLAUDE.md").read_text()
    assert md.startswith(USER_CLAUDE_MD) and "evhub claim" in md and "evhub recall" in md

    installed = files(tmp_path)
    assert "nothing to change" in ok(run("install", "claude", "--project", tmp_path)).stdout
    assert files(tmp_path) == installed


def test_remove_takes_out_exactly_what_install_added(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(USER_SETTINGS, indent=2) + "\n")
    (tmp_path / "CLAUDE.md").write_text(USER_CLAUDE_MD)
    before = files(tmp_path)
    ok(run("install", "claude", "--project", tmp_path))
    # the user adds a hook of their own beside evhub's after installing
    settings = json.loads((tmp_path / ".claude" / "settings.json").read_text())
    settings["hooks"]["Stop"].append({"hooks": [{"type": "command", "command": "say done"}]})
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    ok(run("install", "claude", "--remove", "--project", tmp_path))
    after = json.loads((tmp_path / ".claude" / "settings.json").read_text())
    assert after["hooks"].pop("Stop") == [{"hooks": [{"type": "command", "command": "say done"}]}]
    assert after == USER_SETTINGS
    assert (tmp_path / "CLAUDE.md").read_bytes() == before["CLAUDE.md"]
    assert "nothing to change" in ok(run("install", "claude", "--remove", "--project", tmp_path)).stdout


def test_install_into_a_bare_project_and_remove_leave_nothing_behind(tmp_path: Path) -> None:
    ok(run("install", "claude", "--project", tmp_path))
    assert set(files(tmp_path)) == {".claude/settings.json", "CLAUDE.md"}
    ok(run("install", "claude", "--remove", "--project", tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_a_settings_file_that_is_not_json_is_left_alone_with_one_error_line(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    broken = b'{"hooks": {"Stop": [}\n'
    (tmp_path / ".claude" / "settings.json").write_bytes(broken)
    assert "not valid JSON" in error_line(run("install", "claude", "--project", tmp_path), 1)
    assert (tmp_path / ".claude" / "settings.json").read_bytes() == broken
    assert not (tmp_path / "CLAUDE.md").exists()
    assert "unknown target" in error_line(run("install", "vim", "--project", tmp_path), 1)


def test_mcp_registers_the_server_beside_the_users_own_and_remove_takes_it_out(tmp_path: Path) -> None:
    theirs = {"mcpServers": {"github": {"command": "gh-mcp", "args": ["--stdio"]}}}
    (tmp_path / ".mcp.json").write_text(json.dumps(theirs, indent=2) + "\n")
    ok(run("install", "claude", "--mcp", "--project", tmp_path))
    config = json.loads((tmp_path / ".mcp.json").read_text())
    assert config["mcpServers"] == {**theirs["mcpServers"], "evhub": {"command": "evhub", "args": ["mcp"]}}
    installed = files(tmp_path)
    assert "nothing to change" in ok(run("install", "claude", "--mcp", "--project", tmp_path)).stdout
    assert files(tmp_path) == installed
    ok(run("install", "claude", "--remove", "--project", tmp_path))
    assert json.loads((tmp_path / ".mcp.json").read_text()) == theirs
    assert set(files(tmp_path)) == {".mcp.json"}


def test_an_evhub_server_of_the_users_own_is_never_overwritten(tmp_path: Path) -> None:
    mine = b'{"mcpServers": {"evhub": {"command": "/opt/evhub-fork", "args": ["serve"]}}}\n'
    (tmp_path / ".mcp.json").write_bytes(mine)
    assert "not `evhub mcp`" in error_line(run("install", "claude", "--mcp", "--project", tmp_path), 1)
    assert files(tmp_path) == {".mcp.json": mine}, "nothing else was written either"


def test_an_older_install_is_brought_up_to_date_in_place(tmp_path: Path) -> None:
    """An earlier evhub registered SessionStart without `fork` and no timeout: a forked session was never
    registered, and `bye` had SessionEnd's 1.5 s."""
    older = {"hooks": {
        "SessionStart": [{"matcher": "startup|resume|clear|compact", "hooks": [
            {"type": "command", "command": "echo welcome"}, {"type": "command", "command": HOOK_COMMAND}]}],
        "SessionEnd": [{"hooks": [{"type": "command", "command": HOOK_COMMAND}]}],
    }}
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(older))
    ok(run("install", "claude", "--project", tmp_path))
    settings = json.loads((tmp_path / ".claude" / "settings.json").read_text())
    assert settings["hooks"]["SessionStart"] == [
        {"matcher": "startup|resume|clear|compact", "hooks": [{"type": "command", "command": "echo welcome"}]},
        {"hooks": [{"type": "command", "command": HOOK_COMMAND, "timeout": CLAUDE_HOOKS["SessionStart"][1]}]}]
    assert settings["hooks"]["SessionEnd"] == [
        {"hooks": [{"type": "command", "command": HOOK_COMMAND, "timeout": CLAUDE_HOOKS["SessionEnd"][1]}]}]


def test_local_keeps_evhub_to_your_personal_files_and_remove_finds_it_there(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(USER_SETTINGS, indent=2) + "\n")
    (tmp_path / "CLAUDE.md").write_text(USER_CLAUDE_MD)
    shared = files(tmp_path)
    ok(run("install", "claude", "--local", "--project", tmp_path))
    assert files(tmp_path).items() >= shared.items(), "the shared files are as they were"
    local = json.loads((tmp_path / ".claude" / "settings.local.json").read_text())
    assert {e for e, groups in ours(local).items() if len(groups) == 1} == set(CLAUDE_HOOKS)
    assert "evhub claim" in (tmp_path / "CLAUDE.local.md").read_text()
    # installed in the shared files, then made personal: it moves, and back again
    ok(run("install", "claude", "--project", tmp_path))
    assert not (tmp_path / ".claude" / "settings.local.json").exists() and not (tmp_path / "CLAUDE.local.md").exists()
    ok(run("install", "claude", "--local", "--project", tmp_path))
    assert files(tmp_path).items() >= shared.items()
    ok(run("install", "claude", "--remove", "--project", tmp_path))
    assert files(tmp_path) == shared
    assert ".mcp.json is shared" in error_line(run("install", "claude", "--local", "--mcp", "--project", tmp_path), 1)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def test_local_files_are_kept_out_of_git_in_your_clone_and_remove_puts_its_exclude_back(tmp_path: Path) -> None:
    """Found as `git status` listing the personal files after `install claude --local`, ready for a
    teammate's `git add -A` to commit them."""
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(repo))
    exclude = repo / ".git" / "info" / "exclude"
    before = exclude.read_bytes()
    (repo / "web [v2]").mkdir()  # a folder's name that git would read as a pattern
    for project in (repo, repo / "web [v2]"):  # two projects of one repository, each its own section
        ok(run("install", "claude", "--local", "--project", project))
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(repo, "check-ignore", "web [v2]/CLAUDE.local.md", ".claude/settings.local.json").splitlines() == [
        "web [v2]/CLAUDE.local.md", ".claude/settings.local.json"]
    assert exclude.read_bytes().startswith(before), "the clone's own lines are as they were"
    # Made shared: the shared files show up for committing, and the personal ones are gone with their lines.
    shared = ok(run("install", "claude", "--project", repo)).stdout
    assert f"updated {exclude}" in shared.splitlines()
    assert set(git(repo, "status", "--porcelain").split()[1::2]) == {".claude/", "CLAUDE.md"}
    ok(run("install", "claude", "--remove", "--project", repo))
    ok(run("install", "claude", "--remove", "--project", repo / "web [v2]"))
    assert exclude.read_bytes() == before
    assert git(repo, "status", "--porcelain") == ""


def test_a_linked_worktree_keeps_its_local_files_out_of_git_too(tmp_path: Path) -> None:
    repo, tree = tmp_path / "repo", tmp_path / "tree"
    git(tmp_path, "init", "-q", str(repo))
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "start")
    git(repo, "worktree", "add", "-q", str(tree))
    ok(run("install", "claude", "--local", "--project", tree))
    assert (tree / "CLAUDE.local.md").exists()
    assert git(tree, "status", "--porcelain", "--untracked-files=all") == ""


def test_local_outside_a_git_repository_writes_no_exclude(tmp_path: Path) -> None:
    out = ok(run("install", "claude", "--local", "--project", tmp_path)).stdout
    assert sorted(out.splitlines()) == [f"updated {tmp_path / '.claude' / 'settings.local.json'}",
                                        f"updated {tmp_path / 'CLAUDE.local.md'}"]
