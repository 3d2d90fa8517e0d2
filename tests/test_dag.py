"""DAG rules: every error a planner can make gets a message a human can act on."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from director_tui.engine import dag
from director_tui.engine.models import Node, Plan


def node(
    nid: str, deps: list[str] | None = None, files: list[str] | None = None, **kw: object
) -> Node:
    return Node(
        id=nid,
        depends_on=deps or [],
        files=files if files is not None else [f"src/{nid}.py"],
        tests=kw.pop("tests", [f"tests/test_{nid}.py"]),  # type: ignore[arg-type]
        test_cmd=kw.pop("test_cmd", f"pytest tests/test_{nid}.py"),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def test_a_good_plan_has_no_errors() -> None:
    plan = Plan(nodes=[node("a"), node("b", ["a"]), node("c", ["a"]), node("d", ["b", "c"])])
    assert dag.validate(plan) == []
    assert dag.layers(plan) == [["a"], ["b", "c"], ["d"]]
    weight, path = dag.critical_path(plan)
    assert weight == 6.0 and path[0] == "a" and path[-1] == "d"
    assert dag.dependents(plan, "a") == {"b", "c", "d"}


def test_empty_plan() -> None:
    assert dag.validate(Plan()) == ["the plan has no nodes"]


@pytest.mark.parametrize("bad", ["Upper", "has space", "-lead", "", "x" * 65, "a/b"])
def test_malformed_ids(bad: str) -> None:
    errors = dag.validate(Plan(nodes=[node(bad, files=["src/x.py"], tests=["tests/t.py"])]))
    assert any("malformed" in e for e in errors)


def test_duplicate_and_unknown_and_self_dependency() -> None:
    plan = Plan(nodes=[node("a"), node("a", files=["src/other.py"]), node("b", ["ghost", "b"])])
    errors = "\n".join(dag.validate(plan))
    assert "'a' is used more than once" in errors
    assert "depends on unknown node 'ghost'" in errors
    assert "'b' depends on itself" in errors


def test_cycle_is_shown_as_a_path() -> None:
    plan = Plan(nodes=[node("a", ["c"]), node("b", ["a"]), node("c", ["b"]), node("d")])
    errors = dag.validate(plan)
    cycle = next(e for e in errors if e.startswith("dependency cycle"))
    hops = cycle.removeprefix("dependency cycle: ").split(" → ")
    assert hops[0] == hops[-1] and set(hops) == {"a", "b", "c"}


def test_empty_allowlist_tests_and_command() -> None:
    errors = "\n".join(dag.validate(Plan(nodes=[node("a", files=[], tests=[], test_cmd=" ")])))
    assert "empty allowlist" in errors
    assert "lists no test files" in errors
    assert "has no test_cmd" in errors


def test_overlap_between_concurrent_nodes_names_pair_and_files() -> None:
    plan = Plan(
        nodes=[
            node("a", files=["src/shared.py", "src/a.py"]),
            node("b", files=["src/./shared.py"]),
            node("c", ["a"], files=["src/shared.py"]),  # ordered after a: fine with a
        ]
    )
    errors = dag.validate(plan)
    assert any("'a' and 'b'" in e and "src/shared.py" in e for e in errors)
    assert any("'b' and 'c'" in e for e in errors)
    assert not any("'a' and 'c'" in e for e in errors)


def test_folder_allowlist_overlaps_a_file_inside_it() -> None:
    plan = Plan(nodes=[node("a", files=["src/pkg/"]), node("b", files=["src/pkg/mod.py"])])
    assert any("'a' and 'b'" in e for e in dag.validate(plan))


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/etc/passwd", "absolute"),
        ("../outside.py", "climbs out"),
        ("src/../../x.py", "climbs out"),
        (".git/config", ".git/"),
        (".director/state.json", ".director/"),
        ("C:/win.py", "absolute"),
    ],
)
def test_unsafe_paths(path: str, reason: str) -> None:
    errors = "\n".join(dag.validate(Plan(nodes=[node("a", files=[path])])))
    assert "unsafe" in errors and reason in errors


def test_a_test_file_in_an_allowlist_is_refused() -> None:
    own = Plan(nodes=[node("a", files=["src/a.py", "tests/test_a.py"])])
    assert any("its own test file" in e for e in dag.validate(own))
    other = Plan(nodes=[node("a"), node("b", ["a"], files=["tests/"])])
    assert any("node 'a''s test file" in e for e in dag.validate(other))


@st.composite
def random_dags(draw: st.DrawFn) -> Plan:
    count = draw(st.integers(min_value=1, max_value=25))
    nodes = []
    for i in range(count):
        deps = draw(st.sets(st.integers(min_value=0, max_value=max(i - 1, 0)), max_size=min(i, 4)))
        level = draw(st.sampled_from(["easy", "medium", "hard"]))
        nodes.append(
            node(f"n{i}", [f"n{d}" for d in sorted(deps) if d < i], estimated_difficulty=level)
        )
    order = draw(st.permutations(nodes))
    return Plan(nodes=list(order))


def _longest_chain(plan: Plan) -> float:
    """Brute force, independent of the engine: heaviest chain ending at each node."""
    memo: dict[str, float] = {}

    def ending_at(nid: str) -> float:
        if nid not in memo:
            node_ = plan.node(nid)
            own = dag.DIFFICULTY_WEIGHT[node_.estimated_difficulty]
            memo[nid] = own + max((ending_at(d) for d in node_.depends_on), default=0.0)
        return memo[nid]

    return max(ending_at(n) for n in plan.ids)


@settings(max_examples=150, deadline=None)
@given(random_dags())
def test_random_dags_validate_and_layer_consistently(plan: Plan) -> None:
    assert dag.validate(plan) == []
    layer_of = {nid: i for i, layer in enumerate(dag.layers(plan)) for nid in layer}
    assert set(layer_of) == set(plan.ids)
    for n in plan.nodes:
        for d in n.depends_on:
            assert layer_of[d] < layer_of[n.id]
    weight, path = dag.critical_path(plan)
    for earlier, later in itertools.pairwise(path):
        assert earlier in plan.node(later).depends_on
    assert weight == sum(dag.DIFFICULTY_WEIGHT[plan.node(n).estimated_difficulty] for n in path)
    assert weight == _longest_chain(plan)


@settings(max_examples=150, deadline=None)
@given(random_dags(), st.data())
def test_random_cycles_are_found(plan: Plan, data: st.DataObject) -> None:
    ids = plan.ids
    length = data.draw(st.integers(min_value=1, max_value=min(len(ids), 6)))
    ring = data.draw(st.permutations(ids))[:length]
    by_id = {n.id: n for n in plan.nodes}
    for here, nxt in zip(ring, ring[1:] + ring[:1], strict=True):
        by_id[here].depends_on.append(nxt)
    errors = dag.validate(plan)
    cycle_errors = [e for e in errors if e.startswith("dependency cycle")]
    if length == 1:
        assert any("depends on itself" in e for e in errors)
    else:
        assert cycle_errors
        hops = cycle_errors[0].removeprefix("dependency cycle: ").split(" → ")
        assert hops[0] == hops[-1]
        for here, dep in zip(hops[1:], hops, strict=False):
            # each hop is a real dependency edge (graphlib reports it in either direction)
            assert dep in by_id[here].depends_on or here in by_id[dep].depends_on
