"""The `evhub` command (console script and `python -m evhub`): hook calls, `evhub mcp` and the plain
lines of the hot commands to _entry, without typer; everything else to the CLI."""

import sys

from ._entry import hook, hook_call, hot, hot_call, mcp, mcp_call


def main() -> None:
    call = hook_call(sys.argv[1:])
    if call is None:
        served = mcp_call(sys.argv[1:])
        if served is not None and mcp(*served):
            return
        line = hot_call(sys.argv[1:])
        if line is not None:
            hot(line)
            return
        from ._cli import main as cli

        cli()
    elif isinstance(call, str):
        sys.stderr.write(f"evhub hook: {call}; nothing done\n")  # exit 0: a hook never fails the agent
    else:
        hook(*call)


if __name__ == "__main__":
    main()
