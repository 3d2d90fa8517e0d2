"""Drawing a word/count table."""


def format_table(rows: list[tuple[str, int]]) -> str:
    lines = ["word\tcount"] + [f"{word}\t{count}" for word, count in rows]
    return "\n".join(lines)
