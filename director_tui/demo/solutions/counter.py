"""Counting words."""

from collections import Counter

from wordfreq.stopwords import remove_stop_words
from wordfreq.tokenize import tokenize


def top_words(text: str, n: int) -> list[tuple[str, int]]:
    """The ``n`` most common non-stop words, most common first, ties alphabetical."""
    if n <= 0:
        raise ValueError("n must be positive")
    counts = Counter(remove_stop_words(tokenize(text)))
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]
