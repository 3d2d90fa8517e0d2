# Imports sit inside the tests so a missing module is a test failure, not a
# collection error: red for the right reason.
def test_report_prints_the_top_words(tmp_path, capsys):
    from wordfreq.cli import main
    path = tmp_path / "t.txt"
    path.write_text("the cat and the hat and the cat")
    assert main(["report", str(path), "--top", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == ["word  count", "cat       2"]


def test_missing_file_is_a_clear_error(tmp_path, capsys):
    from wordfreq.cli import main
    assert main(["report", str(tmp_path / "nope.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err
