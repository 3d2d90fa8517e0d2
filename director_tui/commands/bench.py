"""``director bench``: run one frozen plan under several model profiles and compare.

    director bench "<task>" --profiles a,b,c [--plan-profile P] [--repeat N] [--parallel N]
                   [--max-attempts K] [--input FILE|-] [--no-tui] [--json]
    director bench --report [ID] [--json]      the table of the latest bench, or of ID
    director bench --list [--json]             earlier benches, newest first

Exit codes: 0 the bench ran every profile and at least one run was measured (a profile
whose runs failed is reported in its row, not as an error); 1 nothing was compared:
planning failed, or every run of every profile failed; 2 bad input (no such profile, a
broken profile file, a dirty checkout — nothing written); 4 another bench is running in
this repository; 130 interrupted (the partial summary is kept).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from director_tui.commands.common import (
    add_repo_arg,
    add_tui_arg,
    print_json,
    resolve_repo,
    want_tui,
)
from director_tui.engine.errors import UsageError
from director_tui.engine.store import Store

if TYPE_CHECKING:
    from director_tui.engine.bench import BenchSummary


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "bench",
        help="run one frozen plan under several model profiles and compare",
        description="Plan the task once (critiqued gates, no pauses) so the DAG and the "
        "acceptance tests are frozen, then run that same plan under each profile "
        "(.director/profiles/<name>.toml) on its own branch, --repeat times, and compare "
        "cost, quality and spread. Your branch, files and config.toml are never touched.",
        epilog='example: director bench "add a --json flag" --profiles all-frontier,'
        "cheap-cloud --repeat 3   ·   starter profiles: director init --profiles   ·   "
        "exit codes: 0 compared (a profile whose runs failed shows ERROR in its row) · "
        "1 nothing compared: planning failed, or every run failed · 2 bad input (nothing "
        "written) · 4 another bench is running · 130 interrupted",
    )
    parser.add_argument("task", nargs="?", help="what you want done (or use --input)")
    parser.add_argument(
        "--input", metavar="FILE", help="read the task from FILE ('-' for standard input)"
    )
    parser.add_argument(
        "--profiles",
        metavar="A,B,C",
        help="the profiles to compare, comma-separated (all-frontier is the cost baseline)",
    )
    parser.add_argument(
        "--plan-profile",
        metavar="P",
        help="the profile that plans, once (default: all-frontier if listed, else the first)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="runs per profile (default: 1)"
    )
    parser.add_argument(
        "--parallel", type=int, metavar="N", help="nodes at once in each run (default: profile's)"
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        metavar="K",
        help="executor attempts per node before escalation (default: the profile's)",
    )
    parser.add_argument(
        "--report",
        nargs="?",
        const="",
        metavar="ID",
        help="print the table of the latest bench (or of bench ID) again; runs nothing",
    )
    parser.add_argument("--list", action="store_true", help="list earlier benches; runs nothing")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_tui_arg(parser)
    add_repo_arg(parser)
    parser.set_defaults(handler=handle)


def _show(summary: BenchSummary, as_json: bool) -> None:
    if as_json:
        print_json(summary.to_json())
        return
    from director_tui.views.bench_view import report
    from director_tui.views.console import table_console

    console = table_console()
    console.print(report(summary, console.width))


def handle(args: argparse.Namespace) -> int:
    from director_tui.engine import bench

    # Not store_for: a bench reads only its profiles, never config.toml (even a broken one).
    store = Store(resolve_repo(args))
    if args.report == "" and args.task and not (args.input or args.profiles or args.list):
        # `--report --json ID`: argparse gave the ID to the task slot
        args.report, args.task = args.task, None
    if args.report is not None or args.list:
        if args.task or args.input or args.profiles:
            raise UsageError("--report and --list only read results: give no task or profiles")
        if args.list:
            entries = bench.list_benches(store)
            if args.json:
                print_json(entries)
            elif not entries:
                print("no bench has run in this repository yet")
            else:
                from director_tui.views.bench_view import history_table
                from director_tui.views.console import table_console

                table_console().print(history_table(entries))
            return 0
        _show(bench.load_summary(store, args.report or None), args.json)
        return 0

    from director_tui.commands.plan import read_task

    task = read_task(args.task, args.input, "bench")
    if not args.profiles:
        raise UsageError(
            "name the profiles to compare",
            hint=f'director bench "{task[:40]}" --profiles all-frontier,cheap-cloud',
        )
    sink = None
    if not args.json:
        from director_tui.views.bench_view import BenchPrinter

        sink = BenchPrinter()
    summary = bench.run_bench_blocking(
        store,
        task,
        args.profiles.split(","),
        plan_profile=args.plan_profile,
        repeat=args.repeat,
        parallel=args.parallel,
        max_attempts=args.max_attempts,
        on_event=sink,
    )
    _show(summary, args.json)
    code = 0
    if summary.all_runs_failed:
        code = 1
        print(
            f"director bench: every run failed ({len(summary.runs)} of {len(summary.runs)}): "
            "nothing was compared — the ERROR rows say why",
            file=sys.stderr,
        )
    sys.stdout.flush()
    if want_tui(args):
        from director_tui.tui import launch

        return launch(store.repo, "bench") or code
    return code
