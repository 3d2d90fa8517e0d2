"""Counting words."""

from collections import Counter

from wordfreq.stopwords import remove_stop_words
from wordfreq.tokenize import tokenize


def top_words(text: str, n: int) -> list[tuple[str, int]]:
    counts = Counter(remove_stop_words(tokenize(text)))
    return counts.most_common(n)
