"""The agents whose hooks and MCP servers evhub knows, and what differs between them.

Kept apart from _hook so the hook's fast path (_fasthook) can read it without loading the hub.
"""

import msgspec


class Agent(msgspec.Struct, frozen=True):
    name: str  # the `agent` of its agent_attached events
    role: str  # the role its sessions register with
    env_file: str  # the variable naming the file the agent sources before each shell command
    project_dir: str | None  # the variable holding the project's folder, which stays put, if it has one
    # The variable naming the agent's own session (its hooks' `session_id`) in the stdio MCP servers it
    # starts.  Codex passes its MCP servers only a whitelist of variables, none of them its thread id
    # (openai/codex#19937), so a Codex agent says hello or sets EVHUB_SESSION.
    mcp_session: str | None


# Codex has no project-folder variable; its hooks run in the session's cwd, which a `cd` inside
# one shell command does not change.  Codex also sets CLAUDE_ENV_FILE, to the same file.
AGENTS = {a.name: a for a in (Agent("claude", "claude code", "CLAUDE_ENV_FILE", "CLAUDE_PROJECT_DIR",
                                    "CLAUDE_CODE_SESSION_ID"),
                              Agent("codex", "codex", "CODEX_ENV_FILE", None, None))}
