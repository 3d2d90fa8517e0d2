"""``.director/costs.jsonl``: every agent call, with what it cost — in director-cli's field
names beside ours — including the steps a call finished before it was cancelled."""

from __future__ import annotations

import json
from pathlib import Path

from director_tui.engine.cost import CostRecord
from director_tui.engine.store import read_jsonl
from tests.run_fixture import build_job, run, sample_nodes, solve, write_script

# director-cli 0.11's CostEntry (director/cost.py), field for field.
DIRECTOR_CLI_FIELDS = ("role", "model", "input", "output", "cost", "node", "ts")


def test_each_record_carries_director_clis_fields_beside_ours(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes)
    write_script(store, [solve(nodes[0])])
    run(store)
    records = read_jsonl(store.costs)
    assert len(records) == 1
    record = records[0]
    # What director-cli writes, so a script written for it reads our file unchanged.
    assert {name: record[name] for name in DIRECTOR_CLI_FIELDS} == {
        "role": "executor",
        "model": "cheap",
        "input": 1000,
        "output": 200,
        "cost": 0.01,
        "node": "add",
        "ts": record["ts"],
    }
    # Ours are all still there under their own names, and read back the same.
    assert record["cost_usd"] == 0.01 and record["input_tokens"] == 1000
    assert record["tier"] == "scripted/cheap" and record["node_id"] == "add"
    parsed = CostRecord.model_validate(record)
    assert (parsed.input_tokens, parsed.output_tokens, parsed.cost_usd) == (1000, 200, 0.01)
    assert json.loads(store.costs.read_text().splitlines()[0]) == record
