"""DAG rules: what makes a plan safe to run, in messages a human can act on."""

from __future__ import annotations

import graphlib
import posixpath
import re
from collections.abc import Mapping

from director_tui.engine.models import Node, Plan

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
DIFFICULTY_WEIGHT = {"easy": 1.0, "medium": 2.0, "hard": 3.0}


def normalise_path(path: str) -> str:
    """Repo-relative POSIX form; keeps a trailing slash that marks a folder."""
    folder = path.endswith("/")
    norm = posixpath.normpath(path.replace("\\", "/")) if path else ""
    if norm == ".":
        norm = ""
    return norm + "/" if folder and norm else norm


def unsafe_reason(path: str) -> str | None:
    """Why a path may not appear in a plan, or None when it is fine."""
    raw = path.replace("\\", "/")
    if not raw.strip():
        return "empty path"
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        return "absolute path"
    if ".." in raw.split("/"):
        return "path climbs out of the repository ('..')"
    norm = normalise_path(raw)
    top = norm.split("/", 1)[0]
    if top == ".git":
        return "inside .git/"
    if top == ".director":
        return "inside .director/ (director's own state)"
    if not norm:
        return "the repository root itself"
    return None


def _overlap(a: str, b: str) -> bool:
    if a == b:
        return True
    if a.endswith("/") and b.startswith(a):
        return True
    return b.endswith("/") and a.startswith(b)


def ancestors(plan: Plan) -> dict[str, set[str]]:
    """Every node's transitive dependencies (assumes known ids; cycles are tolerated)."""
    deps = {n.id: [d for d in n.depends_on] for n in plan.nodes}
    memo: dict[str, set[str]] = {}

    def visit(node_id: str, trail: frozenset[str]) -> set[str]:
        if node_id in memo:
            return memo[node_id]
        found: set[str] = set()
        for dep in deps.get(node_id, []):
            if dep in trail or dep not in deps:
                continue
            found.add(dep)
            found |= visit(dep, trail | {dep})
        memo[node_id] = found
        return found

    for node_id in deps:
        visit(node_id, frozenset({node_id}))
    return memo


def find_cycle(plan: Plan) -> list[str] | None:
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    ids = set(plan.ids)
    for node in plan.nodes:
        sorter.add(node.id, *[d for d in node.depends_on if d in ids])
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle: list[str] = list(exc.args[1])
        return cycle
    return None


def validate(plan: Plan) -> list[str]:
    """All the problems with a plan; an empty list means it may run."""
    errors: list[str] = []
    if not plan.nodes:
        return ["the plan has no nodes"]
    seen: set[str] = set()
    for node in plan.nodes:
        if not ID_PATTERN.match(node.id):
            errors.append(
                f"node id {node.id!r} is malformed: use lowercase letters, digits, '-', '_' "
                "or '.', starting with a letter or digit, at most 64 characters"
            )
        if node.id in seen:
            errors.append(f"node id {node.id!r} is used more than once")
        seen.add(node.id)
    ids = set(plan.ids)
    all_tests = {normalise_path(t): n.id for n in plan.nodes for t in n.tests}
    for node in plan.nodes:
        errors.extend(_node_errors(node, ids, all_tests))
    cycle = find_cycle(plan)
    if cycle:
        errors.append("dependency cycle: " + " → ".join(cycle))
    else:
        errors.extend(_overlap_errors(plan))
    return errors


def _node_errors(node: Node, ids: set[str], all_tests: Mapping[str, str]) -> list[str]:
    errors: list[str] = []
    where = f"node {node.id!r}"
    for dep in node.depends_on:
        if dep == node.id:
            errors.append(f"{where} depends on itself")
        elif dep not in ids:
            errors.append(f"{where} depends on unknown node {dep!r}")
    if not node.files:
        errors.append(f"{where} has an empty allowlist ('files'): every node must change something")
    if not node.tests:
        errors.append(f"{where} lists no test files ('tests')")
    if not node.test_cmd.strip():
        errors.append(f"{where} has no test_cmd")
    for path in node.files:
        reason = unsafe_reason(path)
        if reason:
            errors.append(f"{where}: allowlist entry {path!r} is unsafe: {reason}")
            continue
        norm = normalise_path(path)
        for test_path, owner in all_tests.items():
            if _overlap(norm, test_path):
                whose = "its own" if owner == node.id else f"node {owner!r}'s"
                errors.append(
                    f"{where}: allowlist entry {path!r} covers {whose} test file "
                    f"{test_path!r}; tests are frozen and may not be edited by an executor"
                )
    for path in node.tests:
        reason = unsafe_reason(path)
        if reason:
            errors.append(f"{where}: test path {path!r} is unsafe: {reason}")
    return errors


def _overlap_errors(plan: Plan) -> list[str]:
    errors: list[str] = []
    before = ancestors(plan)
    nodes = plan.nodes
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            if a.id in before.get(b.id, set()) or b.id in before.get(a.id, set()):
                continue  # ordered by a dependency path: they never run at once
            shared = sorted(
                {
                    fa
                    for fa in map(normalise_path, a.files)
                    for fb in map(normalise_path, b.files)
                    if _overlap(fa, fb)
                }
            )
            if shared:
                errors.append(
                    f"nodes {a.id!r} and {b.id!r} may run at the same time but both may edit "
                    f"{', '.join(shared)}: make one depend on the other or split the files"
                )
    return errors


def layers(plan: Plan) -> list[list[str]]:
    """Nodes grouped by depth: every node sits one layer after its deepest dependency."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for node in plan.nodes:
        sorter.add(node.id, *node.depends_on)
    sorter.prepare()
    result: list[list[str]] = []
    order = {nid: i for i, nid in enumerate(plan.ids)}
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=lambda n: order.get(n, 0))
        result.append(list(ready))
        sorter.done(*ready)
    return result


def _weights(plan: Plan, weights: Mapping[str, float] | None) -> dict[str, float]:
    return {
        n.id: (
            weights[n.id]
            if weights and n.id in weights
            else DIFFICULTY_WEIGHT[n.estimated_difficulty]
        )
        for n in plan.nodes
    }


def _heaviest_below(
    plan: Plan, weights: Mapping[str, float] | None
) -> tuple[dict[str, float], dict[str, str | None]]:
    """Per node, the weight of the heaviest chain from it to the end of the DAG, and the
    next node on that chain (None at its end): one pass over the layers, last first."""
    weight = _weights(plan, weights)
    children: dict[str, list[str]] = {n.id: [] for n in plan.nodes}
    for node in plan.nodes:
        for dep in node.depends_on:
            if dep in children:
                children[dep].append(node.id)
    below: dict[str, float] = {}
    after: dict[str, str | None] = {}
    for layer in reversed(layers(plan)):
        for nid in layer:
            nxt = max(children[nid], key=lambda c: below[c], default=None)
            below[nid] = weight[nid] + (below[nxt] if nxt is not None else 0.0)
            after[nid] = nxt
    return below, after


def chain_weights(plan: Plan, weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """Per node, the heaviest chain of work from it to the end of the DAG (difficulty as
    weight unless ``weights`` says otherwise): the scheduler's priority."""
    return _heaviest_below(plan, weights)[0]


def critical_path(
    plan: Plan, weights: Mapping[str, float] | None = None
) -> tuple[float, list[str]]:
    """The heaviest dependency chain: its total weight and its nodes, first to last."""
    below, after = _heaviest_below(plan, weights)
    if not below:
        return 0.0, []
    first = max(below, key=lambda nid: below[nid])
    path: list[str] = []
    step: str | None = first
    while step is not None:
        path.append(step)
        step = after[step]
    return below[first], path


def dependents(plan: Plan, node_id: str) -> set[str]:
    """Every node that transitively depends on ``node_id``."""
    before = ancestors(plan)
    return {nid for nid, deps in before.items() if node_id in deps}
