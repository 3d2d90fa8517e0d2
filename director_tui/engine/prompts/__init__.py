"""Role prompts: one Markdown file per role, shipped inside the package.

``role_prompt("test_author")`` returns the text of ``test_author.md``. Roles may be spelled
with a dash or an underscore (``test-author``). These are the *system* prompts of the
roles (OpenCode agent prompts); the task-specific user messages are built in
``engine/plan.py`` (plan roles) and the run engine (executor, reviewer).
"""

from __future__ import annotations

from importlib import resources

PROMPT_ROLES = (
    "explorer",
    "brainstorm",
    "planner",
    "critic",
    "test_author",
    "executor",
    "reviewer",
)


def role_prompt(role: str) -> str:
    """The system prompt of ``role``; raises KeyError for a role without a prompt file."""
    name = role.replace("-", "_")
    if name not in PROMPT_ROLES:
        raise KeyError(f"no prompt for role {role!r}; roles are {', '.join(PROMPT_ROLES)}")
    return resources.files(__package__).joinpath(f"{name}.md").read_text(encoding="utf-8")


def all_role_prompts() -> dict[str, str]:
    return {role: role_prompt(role) for role in PROMPT_ROLES}
