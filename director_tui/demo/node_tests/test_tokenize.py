# Imports sit inside the tests so a missing module is a test failure, not a
# collection error: red for the right reason.
def test_lowercases_and_strips_punctuation():
    from wordfreq.tokenize import tokenize
    assert tokenize("Hello, World! Hello.") == ["hello", "world", "hello"]


def test_keeps_apostrophes_inside_words():
    from wordfreq.tokenize import tokenize
    assert tokenize("Don't stop; it's 'quoted'") == ["don't", "stop", "it's", "quoted"]


def test_digits_are_words_and_empty_text_is_empty():
    from wordfreq.tokenize import tokenize
    assert tokenize("route 66 ") == ["route", "66"]
    assert tokenize("  \n\t ") == []
