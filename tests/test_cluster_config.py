"""[cluster] without Ray: the schema, the run's flags, and the git packs that cross the
wire (real git, two repositories)."""

from __future__ import annotations

from pathlib import Path

import pytest

from director_tui.engine.cluster import packs
from director_tui.engine.config import (
    CLUSTER_ADDRESS_ENV,
    CLUSTER_ENGINE_ENV,
    load_config,
    validate,
)
from director_tui.engine.errors import ConfigError
from tests.gitrepo import make_repo, run_git


def test_cluster_defaults_to_local_and_resources_are_per_role(tmp_path: Path) -> None:
    assert validate({}, "x").cluster.engine == "local"
    cluster = validate(
        {"cluster": {"engine": "ray", "resources": {"executor": {"local-llm": 1, "CPU": 2}}}},
        "x",
    ).cluster
    assert cluster.resources_for("executor") == {"local-llm": 1, "CPU": 2}
    assert cluster.resources_for("escalation") == {"local-llm": 1, "CPU": 2}  # borrowed
    with pytest.raises(ConfigError, match="only executor and escalation"):
        validate({"cluster": {"resources": {"reviewer": {"GPU": 1}}}}, "x")
    with pytest.raises(ConfigError, match=r"cluster\.engine"):
        validate({"cluster": {"engine": "k8s"}}, "x")
    with pytest.raises(ConfigError, match="max_in_flight"):
        validate({"cluster": {"max_in_flight": 0}}, "x")


def test_the_run_flags_override_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    monkeypatch.setenv("DIRECTOR_HOME", str(tmp_path / "home"))
    assert load_config(repo).cluster.engine == "local"
    monkeypatch.setenv(CLUSTER_ENGINE_ENV, "ray")
    monkeypatch.setenv(CLUSTER_ADDRESS_ENV, "head:6379")
    cluster = load_config(repo).cluster
    assert (cluster.engine, cluster.address) == ("ray", "head:6379")
    monkeypatch.setenv(CLUSTER_ENGINE_ENV, "k8s")
    with pytest.raises(ConfigError, match="local or ray"):
        load_config(repo)


def test_a_commit_crosses_as_a_pack_of_only_what_the_other_side_lacks(tmp_path: Path) -> None:
    head = make_repo(tmp_path / "head", {"big.txt": "x" * 100_000, "a.txt": "a\n"})
    base = run_git(head, "rev-parse", "HEAD")
    (head / "a.txt").write_text("b\n")
    run_git(head, "commit", "-qam", "change a")
    tip = run_git(head, "rev-parse", "HEAD")
    worker = tmp_path / "worker.git"
    run_git(tmp_path, "init", "-q", "--bare", str(worker))
    packs.apply_pack(worker, packs.make_pack(head, base, []))
    assert packs.has_commit(worker, base) and not packs.has_commit(worker, tip)
    thin = packs.make_pack(head, tip, [base])
    assert len(thin) < 1000  # the big file is not shipped again
    packs.apply_pack(worker, thin)
    assert packs.parents(worker, tip) == [base]
    assert packs.parents(worker, "0" * 40) is None
    # A worker's result: one commit on the base with the tip's tree.
    squashed = packs.squash_onto(worker, tip, base, "result")
    assert packs.parents(worker, squashed) == [base]
    assert run_git(worker, "rev-parse", f"{squashed}^{{tree}}") == run_git(
        worker, "rev-parse", f"{tip}^{{tree}}"
    )
    with pytest.raises(Exception, match="index-pack"):
        packs.apply_pack(worker, b"PACK garbage")


def test_a_ray_client_address_is_refused_with_exit_2(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from tests.cli import director_here_on
    from tests.run_fixture import build_job, sample_nodes

    store = build_job(tmp_path, sample_nodes()[:1])
    ran = director_here_on(
        store.repo, "run", "--no-tui", "--cluster", "ray", "--address", "ray://head:10001"
    )
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "a Ray client address" in ran.stderr and "Traceback" not in ran.stderr
