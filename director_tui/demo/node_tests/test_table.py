# Imports sit inside the tests so a missing module is a test failure, not a
# collection error: red for the right reason.
def test_columns_are_aligned():
    from wordfreq.table import format_table
    table = format_table([("cat", 12), ("hippopotamus", 3)])
    assert table.splitlines() == [
        "word          count",
        "cat              12",
        "hippopotamus      3",
    ]


def test_empty_rows_give_just_the_header():
    from wordfreq.table import format_table
    assert format_table([]) == "word  count"
