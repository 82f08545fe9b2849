"""Which views events change: the sessions, claims and milestones a render after them must draw again.

A command changes a few entities of a hub that may hold thousands; the views of the others stand as
the last render left them (see `_render.redraw`). Only the events whose effect is named by their own
fields are tracked key by key; any other (a registration, a rename, a merge's loss, an event this
version does not know) changes everything, so the next render is whole.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import _events as ev
from ._store import Checkpoint

_SESSION, _CLAIM, _MILESTONE = 0, 1, 2
# What each event changes besides its session's own files (every event is a sign of life of its session).
_KINDS: dict[type, int] = {
    ev.Heartbeat: _SESSION, ev.FocusSet: _SESSION, ev.NoteAdded: _SESSION, ev.MessagePosted: _SESSION,
    ev.MessagesRead: _SESSION, ev.AgentAttached: _SESSION,
    ev.PriorityClaimed: _CLAIM, ev.PriorityReleased: _CLAIM,
    ev.MilestoneCreated: _MILESTONE, ev.MilestoneClaimed: _MILESTONE, ev.StepUpdated: _MILESTONE,
    ev.StepsAdded: _MILESTONE,
}


class Changed:
    """The entities changed by the events folded into a state since it stood at SINCE; `everything`
    when SINCE is unknown or an event changed what no key names."""

    def __init__(self) -> None:
        self.restart(None)

    def restart(self, since: Checkpoint | None) -> None:
        """Count from SINCE, where the state stands now (None: from nowhere, so everything changed)."""
        self.since = since
        self.everything = since is None
        self.sessions: set[str] = set()
        self.claims: set[str] = set()
        self.milestones: set[str] = set()

    def add(self, events: Iterable[ev.Event | ev.UnknownEvent]) -> None:
        """EVENTS were folded into the state."""
        if self.everything:
            return
        kinds = _KINDS
        for e in events:
            kind = kinds.get(e.__class__)
            if kind is None:
                self.everything = True
                return
            self.sessions.add(e.session)  # type: ignore[union-attr, arg-type]
            if kind == _CLAIM:
                self.claims.add(e.priority)  # type: ignore[union-attr]
            elif kind == _MILESTONE:
                self.milestones.add(e.milestone)  # type: ignore[union-attr]
