"""What the CLI says when a user slips or when a command has an outcome worth knowing: advice that itself
works for unknown names, a takeover said in words, a forced release the holder hears of, a quiet `save`."""

from __future__ import annotations

from pathlib import Path

import pytest
from clock import at
from command import Runner, error_line, finished, init_hub, js

from evhub import Hub, NotFound


@pytest.fixture
def hub_root(tmp_path: Path) -> Path:
    """A JSONL hub where carol holds deploy-api and owns milestone deploy-dashboard (the rules are the
    core's, the same on every store)."""
    root = init_hub(tmp_path / "hub")
    with Runner(root).api() as hub:
        hub.hello("carol")
        hub.create_milestone("carol", "Deploy dashboard", steps=["build", "ship"])
        hub.claim_milestone("carol", "deploy-dashboard")
        hub.claim("carol", "deploy-api")
    return root


def test_unknown_sessions_milestones_and_priorities_get_advice_that_works(hub_root: Path) -> None:
    evhub = Runner(hub_root)
    cases = {
        ("note", "hi", "-s", "carl"): "unknown session 'carl': did you mean carol?",
        ("note", "hi", "-s", "Carol"): "unknown session 'Carol': did you mean carol?",
        ("note", "hi", "-s", "Dave"):
            "unknown session 'Dave' (ids are 1-64 of a-z 0-9 . _ -): run `evhub hello dave` first",
        ("note", "hi", "-s", "zed"): "unknown session 'zed': run `evhub hello zed` first",
        ("milestone", "show", "deploy-dashbord"): "unknown milestone 'deploy-dashbord': did you mean deploy-dashboard?",
        ("milestone", "step", "nope", "1", "done", "-s", "carol"):
            "unknown milestone 'nope': `evhub milestone list --all` lists them",
        ("release", "deploy-ap", "-s", "carol"): "deploy-ap is not claimed: did you mean deploy-api?",
        ("why", "deploy-apii"): "deploy-apii has never been claimed: did you mean deploy-api?",
    }
    procs = {args: evhub.start(*args) for args in cases}  # none of them writes: they run side by side
    for args, says in cases.items():
        assert error_line(finished(procs[args]), 1) == f"error: {says}", args
    evhub.ok("hello", "dave")  # the advice given works as given
    # The core raises them, so the Python API and the MCP server say the same.
    with pytest.raises(NotFound, match="did you mean carol"):
        Hub(hub_root).recall("carl")


def test_a_takeover_is_said_in_words_and_in_json(hub_root: Path) -> None:
    evhub = Runner(hub_root)
    with evhub.api() as hub:
        hub.hello("bob")
        hub.claim("bob", "thing1")
        token = hub.claim("bob", "thing2").token
    assert evhub.ok("claim", "thing2", session="carol", now=at(12 * 60)).stdout == (
        f"claimed thing2 (token {token + 1}), taking it over from bob (silent 12m)\n")
    assert js(evhub("claim", "thing1", "--json", session="carol", now=at(12 * 60))) == {
        "priority": "thing1", "token": token + 2, "took_over_from": "bob", "took_over_because": "silent 12m"}
    assert js(evhub("claim", "thing1", "--json", session="carol", now=at(12 * 60)))["took_over_from"] is None
    with evhub.api(at(13 * 60)) as hub:
        hub.claim("bob", "thing3", ttl_s=60)
    with evhub.api(at(14 * 60 + 1)) as hub:  # bob lives on, past its claim's ttl
        hub.heartbeat("bob")
        assert hub.claim("carol", "thing3")[2:] == ("bob", "its ttl ran out")


def test_a_forced_release_tells_the_holder(hub_root: Path) -> None:
    evhub = Runner(hub_root)
    with evhub.api() as hub:
        hub.hello("bob")
        token = hub.state().claims["deploy-api"].token
    assert evhub.ok("release", "deploy-api", "--force", "--note", "carol is stuck", session="bob").stdout == (
        f"released deploy-api (seq {token + 2}); told carol in message #{token + 3}\n")
    told = f'from bob to carol: "force-released your claim on deploy-api (token {token}): carol is stuck"'
    assert told in evhub.ok("recall", session="carol").stdout  # and so in the hook's context


def test_save_keeps_the_status_says_its_progress_once_and_needs_a_milestone_for_milestone_mode(
    hub_root: Path,
) -> None:
    evhub = Runner(hub_root)
    with evhub.api() as hub:
        hub.heartbeat("carol", "deploying to staging")
        hub.hello("bob")
    assert evhub.ok("save", session="carol", now=at(10)).stdout == "saved (milestone)\n"
    evhub.ok("save", "--mode", "milestone", session="carol", now=at(20))
    recall = js(evhub("recall", "--json", session="carol", now=at(30)))
    assert recall["session"]["status"] == "deploying to staging"
    assert [n["text"] for n in recall["notes"]] == ["saved progress: deploy-dashboard 0/2"]
    before = evhub.log_bytes()
    says = error_line(evhub("save", "--mode", "milestone", session="bob"), 1)
    assert says.startswith("error: bob owns no unfinished milestone") and "--mode quick" in says
    assert evhub.log_bytes() == before
