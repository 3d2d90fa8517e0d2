"""Reading and writing bench results: ``summary.json`` (the latest and each bench's),
``history.jsonl`` and the metrics streams beside the latest summary."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from director_tui.engine.bench.layout import bench_dir, history_path
from director_tui.engine.bench.model import BenchSummary
from director_tui.engine.errors import UsageError
from director_tui.engine.store import (
    Store,
    atomic_write_json,
    read_jsonl,
)


def load_summary(store: Store, bench_id: str | None = None) -> BenchSummary:
    """The latest bench's summary, or the one of ``bench_id`` (a unique prefix will do)."""
    import json

    if bench_id is None:
        path = store.bench / "summary.json"
        if not path.is_file():
            raise UsageError(
                "no bench has run in this repository yet",
                hint='director bench "<task>" --profiles all-frontier,cheap-cloud',
            )
    else:
        matches = [
            d for d in bench_dirs(store) if d.name == bench_id or d.name.startswith(bench_id)
        ]
        exact = [d for d in matches if d.name == bench_id]
        if exact:
            matches = exact
        if len(matches) != 1:
            known = ", ".join(d.name for d in bench_dirs(store)[:10]) or "none"
            raise UsageError(
                f"no bench {bench_id!r}" if not matches else f"{bench_id!r} is ambiguous",
                hint=f"known benches (newest first): {known}",
            )
        path = matches[0] / "summary.json"
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the bench summary: {exc}") from exc
    if not isinstance(value, dict):
        raise UsageError(f"{path}: not a bench summary")
    try:
        return BenchSummary.model_validate(value)
    except ValidationError as exc:
        raise UsageError(f"{path}: not a bench summary: {exc.errors()[0]['msg']}") from exc


def bench_dirs(store: Store) -> list[Path]:
    if not store.bench.is_dir():
        return []
    return sorted(
        (d for d in store.bench.iterdir() if d.is_dir() and (d / "summary.json").is_file()),
        key=lambda d: d.name,
        reverse=True,
    )


def list_benches(store: Store) -> list[dict[str, Any]]:
    """Every bench with a summary folder, newest first: id, task, status, profiles,
    repeat and the headline numbers (from ``history.jsonl`` when it has the bench,
    else from the folder's summary, e.g. a bench still running or killed)."""

    indexed = {str(r.get("bench_id")): r for r in read_jsonl(history_path(store))}
    entries = []
    for folder in bench_dirs(store):
        entry = indexed.get(folder.name)
        if entry is None:
            try:
                entry = history_entry(
                    BenchSummary.model_validate_json((folder / "summary.json").read_bytes())
                )
            except (OSError, ValueError):
                continue
        entries.append(entry)
    return entries


def history_entry(summary: BenchSummary) -> dict[str, Any]:
    """One line of ``history.jsonl``: the bench's headline numbers."""
    return {
        "bench_id": summary.bench_id,
        "task": summary.task.splitlines()[0][:100] if summary.task else "",
        "status": summary.status,
        "started_at": summary.started_at,
        "finished_at": summary.finished_at,
        "plan_profile": summary.plan_profile,
        "plan_cost": summary.plan_cost,
        "repeat": summary.repeat,
        "profiles": [
            {
                "profile": row.profile,
                "run_cost": row.run_cost,
                "acceptance_pct": row.acceptance_pct,
                "cost_cut_pct": row.cost_cut_pct,
                "error": row.error,
            }
            for row in summary.rows
        ],
        "hash_ok": summary.hash_check.ok if summary.hash_check else None,
    }


def write_summary(store: Store, summary: BenchSummary) -> None:
    """The bench's summary.json, and the copy beside every bench's (the latest)."""
    data = summary.to_json()
    if summary.bench_id:
        atomic_write_json(bench_dir(store, summary.bench_id) / "summary.json", data)
    atomic_write_json(store.bench / "summary.json", data)


def publish_streams(store: Store, bench_id: str, profiles: Sequence[str]) -> None:
    """The latest bench's metrics streams beside summary.json, where director-cli had them."""
    import shutil

    for name in profiles:
        source = bench_dir(store, bench_id) / f"{name}.metrics.jsonl"
        target = store.bench / f"{name}.metrics.jsonl"
        if source.is_file():
            shutil.copyfile(source, target)
        else:
            target.unlink(missing_ok=True)
