"""What crosses the wire between the head and a worker (JSON, never pickled engine
objects): the ticket of one execution of an attempt, the worker's reply, and the
progress messages it streams while it works."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from director_tui.engine.config import Config
from director_tui.engine.run.executor import AttemptReport, AttemptSpec

ProgressKind = Literal["placed", "event", "call_finished", "gating", "test_line", "notice"]


class AttemptTicket(BaseModel):
    """One execution of an attempt on a worker. A re-submission (the worker died) is a new
    ticket of the same attempt: a new ``token``, the same ``spec``."""

    model_config = ConfigDict(frozen=True)

    token: str
    spec: AttemptSpec
    # The head's effective configuration: tiers, limits, pricing, sampling, ignore globs.
    config: Config
    # The scripted provider's script, when a tier uses it (the worker has no repo of ours).
    script: str | None = None

    @property
    def attempt_id(self) -> str:
        return attempt_id(self.spec)

    @property
    def task_name(self) -> str:
        return f"director-attempt:{self.spec.node.id}:{self.spec.attempt}"


def attempt_id(spec: AttemptSpec) -> str:
    return f"{spec.job_id}:{spec.node.id}:{spec.attempt}"


class WorkerReply(BaseModel):
    """What a worker returns with the result commit's pack (sent beside, as bytes)."""

    token: str
    worker: str  # the worker node's name, as the board shows it
    report: AttemptReport  # ``commit``: one commit on the spec's base, in the pack
    transcript: str = ""  # the executor call's transcript (JSON lines)


class Progress(BaseModel):
    """One progress message of an execution, streamed to the head while it works."""

    token: str
    kind: ProgressKind
    data: dict[str, Any] = {}
