"""Errors the user can act on. Each carries the exit code the CLI returns for it."""

from __future__ import annotations


class DirectorError(Exception):
    """An expected failure with a message meant for a human, never a traceback."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  → {self.hint}" if self.hint else self.message


class UsageError(DirectorError):
    """Bad input: broken config, invalid plan, not a git repo. Nothing was written."""

    exit_code = 2


class ConfigError(UsageError):
    pass


class PlanInvalidError(UsageError):
    def __init__(self, errors: list[str], *, hint: str = "") -> None:
        super().__init__(
            "plan.json is not a valid plan:\n" + "\n".join(f"  - {e}" for e in errors),
            hint=hint or "fix .director/plan.json (or re-run `director plan`) and try again",
        )
        self.errors = errors


class GitError(DirectorError):
    pass


class NotAGitRepoError(UsageError):
    pass


class LockHeldError(DirectorError):
    """Another director process owns this repository's run lock."""

    exit_code = 4


class GateStop(DirectorError):
    """The pipeline stopped at a human gate: not a failure, but not done either."""

    exit_code = 3
