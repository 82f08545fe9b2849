"""The rules of the spec's Semantics section, one scenario each, run through the pure `decide`."""

from __future__ import annotations

import re

import msgspec
import pytest
from histories import TTL, Sim
from hypothesis import given, settings
from hypothesis import strategies as st

from evhub import _decide as d
from evhub import _events as ev
from evhub._errors import BadInput, Conflict, NotFound
from evhub._state import Message, State, is_unread


def hub(*sessions: str) -> Sim:
    sim = Sim()
    for sid in sessions:
        sim.do(d.Hello(session=sid))
    return sim


def only(events: list[ev.Event]) -> ev.Event:
    assert len(events) == 1, events
    return events[0]


# hello


def test_hello_without_id_picks_the_first_free_session_n() -> None:
    sim = hub("session-2")
    assert only(sim.do(d.Hello())).session == "session-1"  # type: ignore[attr-defined]
    assert only(sim.do(d.Hello())).session == "session-3"  # type: ignore[attr-defined]
    # A dead session-N is not free: its id belongs to that session until it comes back.
    sim.tick(TTL + 1)
    assert only(sim.do(d.Hello())).session == "session-4"  # type: ignore[attr-defined]


def test_hello_without_id_skips_the_old_name_of_a_renamed_session() -> None:
    sim = hub("session-1", "session-2")
    sim.do(d.ProposeId(session="session-1", proposed="alice"))
    sim.do(d.AcceptId(session="session-2", proposed="alice"))
    assert only(sim.do(d.Hello())).session == "session-3"  # type: ignore[attr-defined]


def test_hello_of_a_live_id_is_a_conflict_unless_resume() -> None:
    sim = hub("a")
    sim.tick(10)
    with pytest.raises(Conflict, match="session a is alive"):
        sim.do(d.Hello(session="a"))
    hello = only(sim.do(d.Hello(session="a", resume=True, role="reviewer")))
    assert isinstance(hello, ev.SessionRegistered) and hello.resume and hello.role == "reviewer"
    assert sim.state.sessions["a"].role == "reviewer"


def test_hello_of_a_dead_or_departed_id_starts_a_new_incarnation() -> None:
    sim = hub("a", "b")
    first = sim.state.sessions["a"].incarnation
    sim.tick(TTL + 1)
    hello = only(sim.do(d.Hello(session="a")))
    assert isinstance(hello, ev.SessionRegistered) and not hello.resume
    assert sim.state.sessions["a"].incarnation == hello.seq > first
    sim.do(d.Bye(session="b"))
    only(sim.do(d.Hello(session="b")))
    assert sim.state.is_alive("b", sim.ts())


def test_resume_of_an_unknown_id_is_recorded_as_a_plain_hello() -> None:
    hello = only(hub().do(d.Hello(session="new", resume=True)))
    assert isinstance(hello, ev.SessionRegistered) and not hello.resume


def test_a_session_that_left_cannot_act() -> None:
    sim = hub("a")
    sim.do(d.Bye(session="a"))
    with pytest.raises(NotFound, match="has left"):
        sim.do(d.Heartbeat(session="a"))
    with pytest.raises(NotFound, match="unknown session"):
        sim.do(d.Heartbeat(session="ghost"))


# claim


def test_claim_of_a_free_priority_is_granted_with_its_seq_as_token() -> None:
    sim = hub("a")
    claim = only(sim.do(d.ClaimPriority(session="a", priority="p1", ttl_s=600)))
    assert isinstance(claim, ev.PriorityClaimed) and claim.took_over_from is None and claim.ttl_s == 600
    c = sim.state.claims["p1"]
    assert (c.session, c.token, c.since) == ("a", claim.seq, claim.ts)


def test_claim_refresh_by_the_holder_keeps_the_token() -> None:
    sim = hub("a")
    sim.do(d.ClaimPriority(session="a", priority="p1", ttl_s=60))
    token, since = sim.state.claims["p1"].token, sim.state.claims["p1"].since
    sim.tick(50)
    refresh = only(sim.do(d.ClaimPriority(session="a", priority="p1", ttl_s=60)))
    assert isinstance(refresh, ev.PriorityClaimed) and refresh.took_over_from is None
    c = sim.state.claims["p1"]
    assert (c.token, c.since, c.refreshed) == (token, since, refresh.ts)
    # The refresh restarted the ttl: 50 + 50 seconds after the grant, b still cannot take it.
    sim.do(d.Hello(session="b"))
    sim.tick(50)
    with pytest.raises(Conflict):
        sim.do(d.ClaimPriority(session="b", priority="p1"))


def test_claim_held_by_a_live_session_is_a_conflict_naming_holder_and_since() -> None:
    sim = hub("a", "b")
    sim.do(d.ClaimPriority(session="a", priority="p1"))
    c = sim.state.claims["p1"]
    sim.tick(125)
    sim.do(d.Heartbeat(session="a"))
    with pytest.raises(Conflict) as err:
        sim.do(d.ClaimPriority(session="b", priority="p1"))
    message = str(err.value)
    assert "p1" in message and "held by a" in message
    assert c.since in message and "2m ago" in message and f"token {c.token}" in message
    assert sim.state.claims["p1"].session == "a"


def test_claim_of_a_dead_holders_priority_is_a_takeover() -> None:
    sim = hub("a", "b")
    sim.do(d.ClaimPriority(session="a", priority="p1"))
    sim.tick(TTL)
    sim.do(d.Heartbeat(session="b"))
    with pytest.raises(Conflict):  # exactly the ttl: a still lives
        sim.do(d.ClaimPriority(session="b", priority="p1"))
    sim.tick(1)
    claim = only(sim.do(d.ClaimPriority(session="b", priority="p1")))
    assert isinstance(claim, ev.PriorityClaimed) and claim.took_over_from == "a"
    c = sim.state.claims["p1"]
    assert (c.session, c.token, c.took_over_from) == ("b", claim.seq, "a")


@pytest.mark.parametrize("ttl_s", [0, -5, 10 * 365 * 86400 + 1])
def test_a_claim_ttl_out_of_range_is_refused_for_every_caller(ttl_s: int) -> None:
    """The CLI refused `--ttl -5s` while the MCP tool recorded ttl_s=-5: the range is now the core's."""
    sim = hub("a")
    sim.do(d.CreateMilestone(session="a", title="m", steps=["build"]))
    for command in (d.ClaimPriority(session="a", priority="p1", ttl_s=ttl_s),
                    d.ClaimMilestone(session="a", milestone="m", ttl_s=ttl_s)):
        with pytest.raises(BadInput, match="out of range"):
            sim.do(command)


def test_claim_whose_ttl_ran_out_can_be_taken_over_from_a_live_holder() -> None:
    sim = hub("a", "b")
    sim.do(d.ClaimPriority(session="a", priority="p1", ttl_s=60))
    sim.tick(61)
    sim.do(d.Heartbeat(session="a"))
    assert sim.state.is_alive("a", sim.ts())
    claim = only(sim.do(d.ClaimPriority(session="b", priority="p1")))
    assert claim.took_over_from == "a"  # type: ignore[attr-defined]
    # The holder coming back to refresh now finds b there.
    with pytest.raises(Conflict, match="held by b"):
        sim.do(d.ClaimPriority(session="a", priority="p1", ttl_s=60))


def test_takeover_gives_a_new_token_and_the_old_one_goes_stale() -> None:
    sim = hub("a", "b")
    sim.do(d.ClaimPriority(session="a", priority="p1", ttl_s=10))
    old = sim.state.claims["p1"].token
    sim.tick(11)
    sim.do(d.ClaimPriority(session="b", priority="p1"))
    new = sim.state.claims["p1"].token
    assert new > old
    with pytest.raises(Conflict, match=f"stale token {old}"):
        sim.do(d.ReleasePriority(session="a", priority="p1", token=old, force=True))


# release


def test_release_by_the_holder() -> None:
    sim = hub("a")
    sim.do(d.ClaimPriority(session="a", priority="p1"))
    token = sim.state.claims["p1"].token
    rel = only(sim.do(d.ReleasePriority(session="a", priority="p1", token=token, done=True, note="shipped")))
    assert isinstance(rel, ev.PriorityReleased) and not rel.forced and rel.done
    assert sim.state.claims == {}
    done = sim.state.completed[-1]
    assert (done.kind, done.name, done.session, done.note) == ("priority", "p1", "a", "shipped")


def test_release_by_another_needs_force_and_is_recorded_as_forced() -> None:
    sim = hub("a", "b")
    sim.do(d.ClaimPriority(session="a", priority="p1"))
    with pytest.raises(Conflict, match="held by a"):
        sim.do(d.ReleasePriority(session="b", priority="p1"))
    token = sim.state.claims["p1"].token
    rel, told = sim.do(d.ReleasePriority(session="b", priority="p1", force=True, note="stuck"))
    assert isinstance(rel, ev.PriorityReleased) and rel.forced and rel.session == "b"
    assert sim.state.claims == {}
    assert isinstance(told, ev.MessagePosted) and (told.session, told.to) == ("b", "a")  # the holder is told
    assert told.text == f"force-released your claim on p1 (token {token}): stuck"


def test_release_with_a_token_that_is_not_the_current_one_is_a_conflict() -> None:
    sim = hub("a")
    sim.do(d.ClaimPriority(session="a", priority="p1"))
    token = sim.state.claims["p1"].token
    with pytest.raises(Conflict, match=f"stale token {token + 1}: p1 now has token {token} held by a"):
        sim.do(d.ReleasePriority(session="a", priority="p1", token=token + 1))
    assert sim.state.claims["p1"].token == token


def test_release_of_an_unclaimed_priority_is_not_found() -> None:
    with pytest.raises(NotFound, match="not claimed"):
        hub("a").do(d.ReleasePriority(session="a", priority="p1"))


def test_bye_releases_everything_the_session_holds() -> None:
    sim = hub("a", "b")
    for p in ("p1", "p2"):
        sim.do(d.ClaimPriority(session="a", priority=p))
    sim.do(d.ClaimPriority(session="b", priority="p3"))
    events = sim.do(d.Bye(session="a"))
    assert [type(e) for e in events] == [ev.PriorityReleased, ev.PriorityReleased, ev.SessionLeft]
    assert {e.priority for e in events[:2]} == {"p1", "p2"}  # type: ignore[attr-defined]
    assert [e.seq for e in events] == [events[0].seq, events[0].seq + 1, events[0].seq + 2]
    assert list(sim.state.claims) == ["p3"]
    assert not sim.state.is_alive("a", sim.ts())


# milestones


def create(sim: Sim, title: str = "Deploy the Dashboard!", **kw: object) -> ev.MilestoneCreated:
    e = only(sim.do(d.CreateMilestone(session="a", title=title, steps=("build", "test", "ship"), **kw)))  # type: ignore[arg-type]
    assert isinstance(e, ev.MilestoneCreated)
    return e


def test_milestone_id_is_a_slug_of_its_title_and_priority_defaults_to_it() -> None:
    sim = hub("a")
    e = create(sim)
    assert (e.milestone, e.priority, e.steps) == (
        "deploy-the-dashboard",
        "deploy-the-dashboard",
        ["build", "test", "ship"],
    )
    m = sim.state.milestones["deploy-the-dashboard"]
    assert (m.title, m.owner, m.created_by, m.next_step) == ("Deploy the Dashboard!", None, "a", 1)
    e2 = create(sim, title="Other", milestone="m2", priority="p9")
    assert (e2.milestone, e2.priority) == ("m2", "p9")


def test_milestone_create_of_an_existing_id_is_a_conflict() -> None:
    sim = hub("a")
    create(sim)
    with pytest.raises(Conflict, match="milestone deploy-the-dashboard exists"):
        create(sim, title="deploy the dashboard")


def test_milestone_title_without_letters_needs_an_id() -> None:
    with pytest.raises(BadInput, match="cannot make a milestone id"):
        create(hub("a"), title="!!! ???")


def test_milestone_claim_makes_the_caller_owner_and_claims_its_priority() -> None:
    sim = hub("a", "b")
    create(sim, priority="p1")
    events = sim.do(d.ClaimMilestone(session="b", milestone="deploy-the-dashboard", ttl_s=600))
    assert [type(e) for e in events] == [ev.MilestoneClaimed, ev.PriorityClaimed]
    assert sim.state.milestones["deploy-the-dashboard"].owner == "b"
    c = sim.state.claims["p1"]
    assert (c.session, c.token, c.ttl_s) == ("b", events[1].seq, 600)
    with pytest.raises(Conflict, match="p1 is held by b"):
        sim.do(d.ClaimMilestone(session="a", milestone="deploy-the-dashboard"))
    assert sim.state.milestones["deploy-the-dashboard"].owner == "b"
    with pytest.raises(NotFound, match="unknown milestone"):
        sim.do(d.ClaimMilestone(session="a", milestone="nope"))


def test_step_number_and_status_are_checked() -> None:
    sim = hub("a")
    create(sim)
    for n in (0, 4, -1):
        with pytest.raises(BadInput, match="out of range"):
            sim.do(d.UpdateStep(session="a", milestone="deploy-the-dashboard", step=n, status="done"))
    for status in ("finished", "DONE", ""):
        with pytest.raises(BadInput, match="unknown status"):
            sim.do(d.UpdateStep(session="a", milestone="deploy-the-dashboard", step=1, status=status))
    for status in ("pending", "in-progress", "done", "blocked", "skipped"):
        step = only(
            sim.do(d.UpdateStep(session="a", milestone="deploy-the-dashboard", step=3, status=status))
        )
        assert step.status == status  # type: ignore[attr-defined]


def test_step_of_a_milestone_another_live_session_works_on_is_a_conflict() -> None:
    sim = hub("a", "b")
    create(sim)
    sim.do(d.ClaimMilestone(session="a", milestone="deploy-the-dashboard"))
    token = sim.state.claims["deploy-the-dashboard"].token
    with pytest.raises(Conflict, match="being worked on"):
        sim.do(d.UpdateStep(session="b", milestone="deploy-the-dashboard", step=1, status="done"))
    with pytest.raises(Conflict, match="stale token"):
        sim.do(
            d.UpdateStep(
                session="a", milestone="deploy-the-dashboard", step=1, status="done", token=token + 9
            )
        )
    sim.do(d.UpdateStep(session="a", milestone="deploy-the-dashboard", step=1, status="done", token=token))
    assert sim.state.milestones["deploy-the-dashboard"].steps[0].by == "a"


def test_steps_added_later_are_numbered_on_fenced_like_a_step_and_reopen_a_complete_milestone() -> None:
    sim = hub("a", "b")
    only(sim.do(d.CreateMilestone(session="a", title="Docs")))
    with pytest.raises(BadInput, match="no steps yet: add them with `evhub milestone add-step docs"):
        sim.do(d.UpdateStep(session="a", milestone="docs", step=1, status="done"))
    added = only(sim.do(d.AddSteps(session="a", milestone="docs", steps=("write",))))
    assert isinstance(added, ev.StepsAdded) and added.steps == ["write"]
    # The seed's word for done.
    assert only(sim.do(d.UpdateStep(session="a", milestone="docs", step=1, status="completed"))).status == "done"  # type: ignore[attr-defined]
    assert sim.state.milestones["docs"].completed is not None
    sim.do(d.ClaimMilestone(session="a", milestone="docs"))
    with pytest.raises(Conflict, match="being worked on"):
        sim.do(d.AddSteps(session="b", milestone="docs", steps=("review",)))
    with pytest.raises(BadInput, match="step is empty"):
        sim.do(d.AddSteps(session="a", milestone="docs", steps=("publish", " ")))
    sim.do(d.AddSteps(session="a", milestone="docs", steps=("publish", "announce")))
    m = sim.state.milestones["docs"]
    assert [s.text for s in m.steps] == ["write", "publish", "announce"]
    assert (m.completed, m.next_step) == (None, 2)


def test_milestone_with_every_step_done_or_skipped_is_completed() -> None:
    sim = hub("a")
    create(sim)
    mid = "deploy-the-dashboard"
    sim.do(d.UpdateStep(session="a", milestone=mid, step=1, status="done"))
    sim.do(d.UpdateStep(session="a", milestone=mid, step=2, status="skipped", note="no tests yet"))
    m = sim.state.milestones[mid]
    assert (m.done_count, m.next_step, m.completed) == (2, 3, None)
    assert sim.state.completed == []
    last = only(sim.do(d.UpdateStep(session="a", milestone=mid, step=3, status="done")))
    assert m.completed == last.ts and m.next_step is None
    [done] = sim.state.completed
    assert (done.kind, done.name, done.note) == ("milestone", mid, "Deploy the Dashboard!")
    # Reopening a step makes it active again.
    sim.do(d.UpdateStep(session="a", milestone=mid, step=2, status="blocked"))
    assert m.completed is None and m.next_step == 2


# messages


def inbox(state: State, session: str, after: int | None = None) -> list[Message]:
    """SESSION's unread messages, from a state folded from the start (so it holds every new message)."""
    s = state.sessions[session]
    s = s if after is None else msgspec.structs.replace(s, read_upto=after)
    return [m for m in state.new_messages if is_unread(m, s)]


def test_inbox_holds_messages_to_me_or_all_not_from_me_after_my_read_position() -> None:
    sim = hub("a", "b", "c")
    to_all = only(sim.do(d.SendMessage(session="b", text="hello all")))
    only(sim.do(d.SendMessage(session="a", text="from me")))
    to_me = only(sim.do(d.SendMessage(session="c", text="hi a", to="a")))
    only(sim.do(d.SendMessage(session="c", text="hi b", to="b")))
    assert [m.seq for m in inbox(sim.state, "a")] == [to_all.seq, to_me.seq]
    assert [m.text for m in inbox(sim.state, "b")] == ["from me", "hi b"]
    assert [m.sender for m in inbox(sim.state, "a", after=to_all.seq)] == ["c"]
    read = only(sim.do(d.MarkRead(session="a", upto=to_me.seq)))
    assert isinstance(read, ev.MessagesRead) and sim.state.sessions["a"].read_upto == to_me.seq
    assert inbox(sim.state, "a") == []
    later = only(sim.do(d.SendMessage(session="b", text="later", to="a")))
    assert [m.seq for m in inbox(sim.state, "a")] == [later.seq]


def test_messages_read_above_the_position_stay_read_and_the_others_stay_unread() -> None:
    sim = hub("a", "b")
    older, middle, newest = (only(sim.do(d.SendMessage(session="b", text=t, to="a"))) for t in ("1", "2", "3"))
    read = only(sim.do(d.MarkRead(session="a", upto=older.seq - 1, seqs=(middle.seq, newest.seq))))
    assert isinstance(read, ev.MessagesRead) and read.seqs == [middle.seq, newest.seq]
    assert [m.text for m in inbox(sim.state, "a")] == ["1"]
    assert sim.do(d.MarkRead(session="a", upto=0, seqs=(newest.seq,))) == [], "already read"
    sim.do(d.MarkRead(session="a", upto=newest.seq))
    assert (sim.state.sessions["a"].read_upto, sim.state.sessions["a"].read_seqs) == (newest.seq, [])


def test_a_newcomer_is_not_handed_the_broadcasts_from_before_it_registered() -> None:
    sim = hub("a", "b")
    only(sim.do(d.SendMessage(session="a", text="history")))
    only(sim.do(d.SendMessage(session="a", text="for b", to="b")))
    sim.do(d.Bye(session="b"))
    only(sim.do(d.SendMessage(session="a", text="while b was away", to="b")))
    sim.do(d.Hello(session="c"))
    later = only(sim.do(d.SendMessage(session="a", text="later")))
    assert [m.seq for m in inbox(sim.state, "c")] == [later.seq]
    sim.do(d.Hello(session="b", resume=True))
    assert [m.text for m in inbox(sim.state, "b")] == ["history", "for b", "while b was away", "later"]
    sim.do(d.Bye(session="b"))
    sim.do(d.Hello(session="b"))  # a new session under an old name: mail to the name stays, history goes
    assert [m.text for m in inbox(sim.state, "b")] == ["for b", "while b was away"]


def test_mark_read_never_moves_the_position_back() -> None:
    sim = hub("a", "b")
    msg = only(sim.do(d.SendMessage(session="b", text="x")))
    sim.do(d.MarkRead(session="a", upto=msg.seq))
    assert sim.do(d.MarkRead(session="a", upto=1)) == []
    assert sim.do(d.MarkRead(session="a", upto=msg.seq)) == []
    assert sim.state.sessions["a"].read_upto == msg.seq


def test_message_to_an_unknown_session_is_not_found_and_blank_text_bad_input() -> None:
    sim = hub("a")
    with pytest.raises(NotFound, match="unknown recipient"):
        sim.do(d.SendMessage(session="a", text="x", to="ghost"))
    with pytest.raises(BadInput, match="empty"):
        sim.do(d.SendMessage(session="a", text=" \n\t"))


def test_message_to_an_old_name_reaches_the_renamed_session() -> None:
    sim = hub("session-1", "b")
    sim.do(d.ProposeId(session="session-1", proposed="alice"))
    sim.do(d.AcceptId(session="b", proposed="alice"))
    msg = only(sim.do(d.SendMessage(session="b", text="still there?", to="session-1")))
    assert msg.to == "alice"  # type: ignore[attr-defined]
    assert [m.text for m in inbox(sim.state, "alice")] == ["still there?"]


# handshakes


def test_proposal_accepted_by_every_live_voter_renames() -> None:
    sim = hub("session-1", "b", "c")
    sim.do(d.Hello(session="dead"))
    sim.tick(TTL + 1)
    for sid in ("session-1", "b", "c"):
        sim.do(d.Heartbeat(session=sid))
    sim.do(d.ProposeId(session="session-1", proposed="alice", reason="clearer"))
    [p] = sim.state.proposals
    assert sorted(p.voters) == ["b", "c"] and p.status == "pending"
    assert sim.state.sessions["session-1"].agreement == "proposed"
    sim.do(d.AcceptId(session="b", proposed="alice"))
    assert sim.do(d.AcceptId(session="b", proposed="alice")) == [], "a second accept changes nothing"
    assert p.status == "pending" and "session-1" in sim.state.sessions
    sim.do(d.Hello(session="dead", resume=True))
    with pytest.raises(Conflict, match="not live"):
        sim.do(d.AcceptId(session="dead", proposed="alice"))
    sim.do(d.AcceptId(session="c", proposed="alice"))
    assert p.status == "agreed"
    assert set(sim.state.sessions) == {"alice", "b", "c", "dead"}
    assert sim.state.sessions["alice"].agreement == "agreed"


def test_proposal_with_nobody_else_live_is_agreed_at_once() -> None:
    sim = hub("session-1")
    sim.do(d.ProposeId(session="session-1", proposed="alice"))
    assert "alice" in sim.state.sessions and sim.state.proposals[0].status == "agreed"


def test_one_rejection_rejects() -> None:
    sim = hub("session-1", "b", "c")
    sim.do(d.ProposeId(session="session-1", proposed="alice"))
    sim.do(d.AcceptId(session="b", proposed="alice"))
    rej = only(sim.do(d.RejectId(session="c", proposed="alice", reason="alice is me elsewhere")))
    assert isinstance(rej, ev.IdRejected)
    [p] = sim.state.proposals
    assert (p.status, p.rejected_by, p.reject_reason) == ("rejected", "c", "alice is me elsewhere")
    assert "session-1" in sim.state.sessions and "alice" not in sim.state.sessions
    assert sim.state.sessions["session-1"].agreement == "rejected"
    with pytest.raises(NotFound, match="no pending proposal"):
        sim.do(d.AcceptId(session="c", proposed="alice"))


def test_cannot_propose_an_existing_id_or_ones_own() -> None:
    sim = hub("session-1", "bob")
    with pytest.raises(Conflict, match="taken"):
        sim.do(d.ProposeId(session="session-1", proposed="bob"))
    with pytest.raises(BadInput, match="already"):
        sim.do(d.ProposeId(session="session-1", proposed="session-1"))
    sim.do(d.ProposeId(session="session-1", proposed="alice"))
    with pytest.raises(Conflict, match="already proposed"):
        sim.do(d.ProposeId(session="bob", proposed="alice"))
    with pytest.raises(BadInput, match="own proposal"):
        sim.do(d.AcceptId(session="session-1", proposed="alice"))


def test_a_new_proposal_replaces_the_pending_one_and_a_dead_proposers_is_free() -> None:
    sim = hub("session-1", "bob")
    sim.do(d.ProposeId(session="session-1", proposed="alice"))
    sim.do(d.ProposeId(session="session-1", proposed="carol"))
    assert [(p.proposed, p.status) for p in sim.state.proposals] == [("alice", "withdrawn"), ("carol", "pending")]
    with pytest.raises(NotFound, match="no pending proposal"):
        sim.do(d.AcceptId(session="bob", proposed="alice"))
    sim.tick(sim.state.alive_ttl_s + 1)
    sim.do(d.Heartbeat(session="bob"))
    sim.do(d.ProposeId(session="bob", proposed="carol"))  # session-1 is dead: its proposal is no bar
    assert [(p.session, p.status) for p in sim.state.proposals if p.proposed == "carol"] == [
        ("session-1", "withdrawn"), ("bob", "agreed")]
    assert "carol" in sim.state.sessions and "bob" not in sim.state.sessions


def test_proposing_an_old_name_takes_it_over_from_its_former_owner() -> None:
    sim = hub("bob", "x")
    sim.do(d.ProposeId(session="bob", proposed="carol"))
    sim.do(d.AcceptId(session="x", proposed="carol"))
    assert sim.state.resolve("bob") == "carol"
    sim.do(d.ProposeId(session="x", proposed="bob"))
    sim.do(d.AcceptId(session="carol", proposed="bob"))
    assert set(sim.state.sessions) == {"bob", "carol"}
    assert sim.state.sessions["bob"].aka == ["x"]
    assert sim.state.aliases == {"x": "bob"}, "an id is a session or an alias, never both"
    msg = only(sim.do(d.SendMessage(session="carol", text="hi", to="bob")))
    assert msg.to == "bob"  # type: ignore[attr-defined]


def test_hello_cannot_take_an_id_that_is_pending_in_a_proposal() -> None:
    # Otherwise agreeing the proposal would rename session-1 on top of the newcomer.
    sim = hub("session-1", "b")
    sim.do(d.ProposeId(session="session-1", proposed="alice"))
    with pytest.raises(Conflict, match="proposed"):
        sim.do(d.Hello(session="alice"))
    sim.do(d.AcceptId(session="b", proposed="alice"))
    assert sim.state.sessions["alice"].aka == ["session-1"]


def test_hello_without_id_does_not_pick_an_id_pending_in_a_proposal() -> None:
    sim = hub("session-1", "b")
    sim.do(d.ProposeId(session="session-1", proposed="session-2"))
    assert only(sim.do(d.Hello())).session == "session-3"  # type: ignore[attr-defined]


# bad input

BAD_IDS = [
    "",
    "a" * 65,
    "a/b",
    "../etc",
    "a..b",
    "has space",
    "Upper",
    "nul\x00",
    "-lead",
    ".hidden",
    "é",
    "a\n",
]


def commands_naming(bad: str) -> list[d.Command]:
    return [
        d.Hello(session=bad),
        d.ClaimPriority(session="a", priority=bad),
        d.ReleasePriority(session="a", priority=bad),
        d.CreateMilestone(session="a", title="t", milestone=bad),
        d.CreateMilestone(session="a", title="t", priority=bad),
        d.ClaimMilestone(session="a", milestone=bad),
        d.UpdateStep(session="a", milestone=bad, step=1, status="done"),
        d.SendMessage(session="a", text="x", to=bad),
        d.ProposeId(session="a", proposed=bad),
        d.AcceptId(session="b", proposed=bad),
        d.RejectId(session="b", proposed=bad),
    ]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_bad_identifiers_are_bad_input_everywhere(bad: str) -> None:
    sim = hub("a", "b")
    before = msgspec.msgpack.encode(sim.state)
    for cmd in commands_naming(bad):
        with pytest.raises(BadInput):
            sim.do(cmd)
    assert msgspec.msgpack.encode(sim.state) == before
    assert len(sim.events) == 3


def test_longest_id_is_accepted() -> None:
    sim = hub("a" * 64, "a.b_c-9")
    assert set(sim.state.sessions) == {"a" * 64, "a.b_c-9"}


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=70) | st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True))
def test_hello_accepts_exactly_the_identifier_grammar(sid: str) -> None:
    valid = re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", sid) is not None and ".." not in sid
    sim = hub()
    if valid:
        assert only(sim.do(d.Hello(session=sid))).session == sid  # type: ignore[attr-defined]
    else:
        with pytest.raises(BadInput):
            sim.do(d.Hello(session=sid))


def test_bad_text_is_bad_input() -> None:
    sim = hub("a")
    with pytest.raises(BadInput, match="NUL"):
        sim.do(d.AddNote(session="a", text="a\x00b"))
    with pytest.raises(BadInput, match="limit"):
        sim.do(d.SetFocus(session="a", text="x" * (64 * 1024 + 1)))
    with pytest.raises(BadInput, match="empty"):
        sim.do(d.CreateMilestone(session="a", title="t", steps=("ok", "  ")))
    assert len(sim.events) == 2


def test_decide_stamps_gap_free_seqs_and_never_runs_time_backwards() -> None:
    sim = hub("a")
    last = sim.events[-1]
    sim.tick(-3600)
    [e] = sim.do(d.Heartbeat(session="a"))
    assert e.seq == last.seq + 1 and e.ts == last.ts
