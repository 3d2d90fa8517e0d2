"""Role prompts and role permissions.

``role_prompt("test_author")`` returns the text of ``test_author.md``, shipped inside the
package. Roles may be spelled with a dash or an underscore (``test-author``). These are
the *system* prompts of the roles (OpenCode agent prompts); the task-specific user
messages are built in ``engine/plan/`` (plan roles) and the run engine (executor,
reviewer).

``permissions_for(role)`` is the one table every provider driver applies: read-only
roles may read and search but never edit, run commands or reach the web; the roles that
write code (executor, test_author, and escalation, which is an executor on a stronger
tier) may edit and run commands, never the web.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from director_tui.engine.errors import DirectorError

PROMPT_ROLES = (
    "explorer",
    "brainstorm",
    "planner",
    "critic",
    "test_author",
    "executor",
    "reviewer",
)
# Roles that run with another role's prompt.
PROMPT_ALIASES = {"escalation": "executor"}


class PromptMissingError(DirectorError):
    """A role's prompt file is not in the installed package (a broken install)."""


@dataclass(frozen=True)
class RolePermissions:
    edit: bool  # create, edit, delete files
    bash: bool  # run shell commands
    web: bool  # fetch URLs, search the web

    @property
    def read_only(self) -> bool:
        return not (self.edit or self.bash)


READ_ONLY = RolePermissions(edit=False, bash=False, web=False)
WRITER = RolePermissions(edit=True, bash=True, web=False)

ROLE_PERMISSIONS: dict[str, RolePermissions] = {
    "explorer": READ_ONLY,
    "brainstorm": READ_ONLY,
    "planner": READ_ONLY,
    "critic": READ_ONLY,
    "reviewer": READ_ONLY,
    "executor": WRITER,
    "test_author": WRITER,
    "escalation": WRITER,
}
READ_ONLY_ROLES = frozenset(role for role, perms in ROLE_PERMISSIONS.items() if perms.read_only)


def normalize_role(role: str) -> str:
    return role.replace("-", "_")


def permissions_for(role: str) -> RolePermissions:
    """The role's permissions; an unknown role gets none (fail closed, never open)."""
    return ROLE_PERMISSIONS.get(normalize_role(role), READ_ONLY)


def role_prompt(role: str) -> str:
    """The system prompt of ``role``.

    Raises KeyError for a role that has no prompt, and :class:`PromptMissingError` when
    the role is known but its file is not in the installed package.
    """
    name = normalize_role(role)
    name = PROMPT_ALIASES.get(name, name)
    if name not in PROMPT_ROLES:
        raise KeyError(f"no prompt for role {role!r}; roles are {', '.join(PROMPT_ROLES)}")
    resource = resources.files(__package__).joinpath(f"{name}.md")
    try:
        return resource.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PromptMissingError(
            f"the prompt of role {name!r} ({name}.md) is missing from the installed package",
            hint="reinstall director-tui (`pip install -e .` in a checkout)",
        ) from exc


def all_role_prompts() -> dict[str, str]:
    return {role: role_prompt(role) for role in PROMPT_ROLES}
