"""A plan node's contract as Gate 2 shows it: its fields, spec, validation errors, each
test file's source and hash, and the red output that proved the tests fail."""

from __future__ import annotations

from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text

from director_tui.engine import git
from director_tui.engine.jobs import job_worktree
from director_tui.engine.models import Node, Plan
from director_tui.engine.store import Store


def node_contract(node: Node, errors: list[str], store: Store, plan: Plan | None) -> Group:
    """``errors``: the plan's validation messages (those naming the node are shown)."""
    parts: list[Text | Syntax] = [_head(node, errors)]
    for test in node.tests:
        digest = node.test_hashes.get(test, "")
        title = Text()
        title.append(f"\n{test}", style="bold underline")
        title.append(f"  sha256 {digest[:16] or 'not frozen yet'}\n", style="dim")
        parts.append(title)
        source = test_source(store, plan, test)
        if source is None:
            parts.append(Text("(not written yet)", style="dim"))
        else:
            lexer = "python" if test.endswith(".py") else Syntax.guess_lexer(test, source)
            parts.append(Syntax(source, lexer, line_numbers=True, word_wrap=True))
    if node.red_output:
        parts.append(
            Text("\nRed output (tests failing before any implementation)", style="bold underline")
        )
        parts.append(Text(node.red_output.strip(), style="red"))
    return Group(*parts)


def _head(node: Node, errors: list[str]) -> Text:
    head = Text()
    # One run with a visible separator: two styled runs split by spaces alone read
    # "modelItem model…" wherever a viewer drops the spaces between them.
    head.append(f"{node.id} · ", style="bold")
    head.append(f"{node.title or '(no title)'}\n", style="italic")
    head.append("difficulty ", style="dim")
    head.append(f"{node.estimated_difficulty}\n")
    head.append("depends on ", style="dim")
    head.append((", ".join(node.depends_on) or "—") + "\n")
    head.append("allowlist  ", style="dim")
    head.append((", ".join(node.files) or "—") + "\n")
    head.append("test_cmd   ", style="dim")
    head.append(f"{node.test_cmd or '—'}\n\n")
    head.append("Spec\n", style="bold underline")
    head.append(f"{node.spec.strip() or '—'}\n")
    node_errors = [e for e in errors if f"'{node.id}'" in e]
    if node_errors:
        head.append("\n")
        for error in node_errors:
            head.append(f"✘ {error}\n", style="red")
    return head


def test_source(store: Store, plan: Plan | None, path: str) -> str | None:
    """Test files live on the job branch: its worktree, else git, else the checkout."""
    candidate = job_worktree(store) / path
    if candidate.is_file():
        return candidate.read_text(encoding="utf-8", errors="replace")
    if plan is not None and plan.job_branch:
        data = git.file_at(store.repo, plan.job_branch, path)
        if data is not None:
            return data.decode("utf-8", errors="replace")
    local = store.repo / path
    return local.read_text(encoding="utf-8", errors="replace") if local.is_file() else None
