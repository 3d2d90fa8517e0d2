# Imports sit inside the tests so a missing module is a test failure, not a
# collection error: red for the right reason.
import pytest


def test_counts_without_stop_words():
    from wordfreq.counter import top_words
    text = "The cat and the hat. The cat sat."
    assert top_words(text, 2) == [("cat", 2), ("hat", 1)]


def test_ties_are_broken_alphabetically():
    from wordfreq.counter import top_words
    assert top_words("pear apple pear apple fig", 3) == [("apple", 2), ("pear", 2), ("fig", 1)]


def test_n_must_be_positive():
    from wordfreq.counter import top_words
    with pytest.raises(ValueError):
        top_words("anything", 0)
