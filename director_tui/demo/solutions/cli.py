"""``python -m wordfreq.cli report FILE --top N``."""

import argparse
import sys

from wordfreq.counter import top_words
from wordfreq.table import format_table
from wordfreq.textio import read_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wordfreq")
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="print the most common words of a file")
    report.add_argument("file")
    report.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    try:
        text = read_text(args.file)
    except OSError as exc:
        print(f"wordfreq: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    print(format_table(top_words(text, args.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
