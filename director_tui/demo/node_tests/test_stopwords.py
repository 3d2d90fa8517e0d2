# Imports sit inside the tests so a missing module is a test failure, not a
# collection error: red for the right reason.
def test_common_words_are_stop_words():
    from wordfreq.stopwords import STOP_WORDS, is_stop_word, remove_stop_words
    for word in ("the", "a", "and", "of", "to", "is"):
        assert word in STOP_WORDS
        assert is_stop_word(word)


def test_case_insensitive_and_order_kept():
    from wordfreq.stopwords import STOP_WORDS, is_stop_word, remove_stop_words
    assert is_stop_word("The")
    assert remove_stop_words(["the", "cat", "and", "The", "hat"]) == ["cat", "hat"]
