"""Words too common to count."""

STOP_WORDS: frozenset[str] = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
    ]
)


def is_stop_word(word: str) -> bool:
    return word.lower() in STOP_WORDS


def remove_stop_words(words: list[str]) -> list[str]:
    return [word for word in words if not is_stop_word(word)]
