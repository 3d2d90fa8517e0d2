"""``director bench``: one frozen plan, run under several model profiles, repeated.

The control that makes the comparison fair is *plan once, run many*: the task is planned
a single time (under the plan profile, critiqued gates, no pauses), so every profile faces
the same DAG and byte-for-byte the same acceptance tests; only the models differ. Agent
token use varies several-fold between identical runs, so each profile runs ``repeat``
times and the report shows mean, standard deviation and min/max, not one lucky number.

Entry point (the CLI and the TUI call this)::

    summary = await run_bench(store, task, ["all-frontier", "cheap-cloud"],
                              plan_profile=None, repeat=2, parallel=None)
    summary = run_bench_blocking(store, task, profiles, ...)   # asyncio.run() around it
    summary = load_summary(store, bench_id=None)               # the latest, or one by id
    entries = list_benches(store)                              # history, newest first

Isolation — the user's job in ``.director/`` and their checkout are never touched:

- Planning uses its own store, ``.director/bench/<id>/plan/`` (``Store(repo, root=...)``),
  and makes the frozen job branch ``director/job-<job id>`` without a checkout.
- Run *k* of profile *p* forks ``director/bench-<id>-<p>-<k>`` off the frozen branch
  (``git branch``, never a checkout) and gets its own store,
  ``.director/bench/<id>/runs/<p>-<k>/``, holding a copy of the frozen ``plan.json``
  (job id and branch rewritten to the fork) and an approved ``plan_stage.json``; it runs
  with that profile's ``Config`` from ``.director/profiles/<p>.toml`` alone (the user's
  ``config.toml`` is never read for it, nor written). Its ``state.json``,
  ``costs.jsonl``, ``metrics.jsonl`` and ``events.jsonl`` stay in that folder.
- One run failing (a missing agent binary, a crash) is recorded in its row; the others
  go on. Runs go one after another so their wall times compare; ``parallel`` is the
  nodes at once inside each run.

Files (``.director/bench/``):

- ``<id>/summary.json`` — director-cli's fields (``task``, ``plan_profile``,
  ``plan_cost``, ``job_id``, ``rows[{profile, n_nodes, done, executor_pct, escalated,
  review_pct, integration_ok, run_cost, wall_secs, error}]``, the numeric ones being
  means over the repeats) plus ours: per row ``stats`` (mean/std/min/max/n of every
  measure), ``run_cost_std``/``_min``/``_max``, ``acceptance_pct``, ``tokens_by_role``,
  ``cost_cut_pct``/``cut_target_met``/``quality_held`` against ``all-frontier``; the
  ``runs`` list (one record per profile × repeat); ``hash_check``; ``status``
  (``running`` while it runs, rewritten after every run, then ``finished``/``failed``/
  ``interrupted``).
- ``summary.json`` — a copy of the latest bench's summary (what director-cli wrote).
- ``<id>/<profile>.metrics.jsonl`` — every run's ``metrics.jsonl`` records tagged with
  ``bench_id``/``profile``/``repeat``, then one ``kind: "bench_run"`` record per run;
  ``<profile>.metrics.jsonl`` beside ``summary.json`` is the latest bench's copy.
- ``history.jsonl`` — one line per finished bench (id, task, status, profiles, the
  headline numbers), what ``director bench --list`` prints.
- ``events.jsonl`` — **the one place to watch for live progress**: ``BenchProgress``
  events of every bench (each carries its ``bench_id``). The full event stream of one
  run (nodes, agents, gates) is that run's own ``runs/<p>-<k>/events.jsonl``.

Modules: ``runner`` (the bench itself), ``stats`` (pure functions over
:class:`RunResult` records: :func:`spread`, :func:`profile_row`,
:func:`compare_to_baseline`, :func:`build_summary`), ``model`` (:class:`BenchSummary`,
the typed ``summary.json``), ``summary_io`` (summary, history and streams on disk),
``layout`` (ids, branches, folders, profile names), ``progress`` (``BenchProgress``).
"""

from __future__ import annotations

from director_tui.engine.bench.layout import bench_branch, check_profile_names, events_path
from director_tui.engine.bench.model import BenchRow, BenchSummary, HashCheck
from director_tui.engine.bench.runner import BenchError, run_bench, run_bench_blocking
from director_tui.engine.bench.stats import (
    BASELINE,
    CUT_TARGET_PCT,
    RunResult,
    Spread,
    build_summary,
    compare_to_baseline,
    cost_cut_pct,
    profile_row,
    quality_held,
    spread,
    tokens_by_role,
)
from director_tui.engine.bench.summary_io import history_entry, list_benches, load_summary

__all__ = [
    "BASELINE",
    "CUT_TARGET_PCT",
    "BenchError",
    "BenchRow",
    "BenchSummary",
    "HashCheck",
    "RunResult",
    "Spread",
    "bench_branch",
    "build_summary",
    "check_profile_names",
    "compare_to_baseline",
    "cost_cut_pct",
    "events_path",
    "history_entry",
    "list_benches",
    "load_summary",
    "profile_row",
    "quality_held",
    "run_bench",
    "run_bench_blocking",
    "spread",
    "tokens_by_role",
]
