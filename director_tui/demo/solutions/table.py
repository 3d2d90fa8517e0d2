"""Drawing a word/count table."""


def format_table(rows: list[tuple[str, int]]) -> str:
    """A left-aligned word column and a right-aligned count column under a header."""
    word_width = max([len("word"), *(len(word) for word, _ in rows)])
    count_width = max([len("count"), *(len(str(count)) for _, count in rows)])
    lines = [f"{'word':<{word_width}}  {'count':>{count_width}}"]
    lines += [f"{word:<{word_width}}  {count:>{count_width}}" for word, count in rows]
    return "\n".join(lines)
