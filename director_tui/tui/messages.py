"""The messages between the screens and the app (see ``screens/base.py`` for the contract).

A screen asks by posting a message (it bubbles from the screen to the app); the app answers
the screen that asked by posting ``EngineJobFinished`` to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from director_tui.tui.engine_bridge import EngineJob, EngineTask

if TYPE_CHECKING:
    from textual.message_pump import MessagePump


@dataclass
class StartEngineJob(Message):
    """Run ``job`` in the app's engine worker. ``started`` is said once it has started;
    the app refuses (and says why) while another job runs or another process holds the
    repository. ``requester`` hears ``EngineJobFinished`` when the job ends."""

    job: EngineJob
    started: str
    requester: MessagePump | None = None


@dataclass
class StartRun(Message):
    """Start (or resume) the run in the app's engine worker and show the run board."""


@dataclass
class SendControl(Message):
    """A control request (retry, skip, pause…): to the live engine, or applied at once to
    state.json when no run is live; the engine's answer is notified either way."""

    action: str
    node_id: str | None = None


@dataclass
class EngineJobFinished(Message, bubble=False):
    """The job a screen asked for has ended; ``result`` is the engine's answer when ``ok``."""

    task: EngineTask
    ok: bool
    result: object = None
