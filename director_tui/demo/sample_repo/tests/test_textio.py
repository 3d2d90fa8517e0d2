from wordfreq.textio import read_text


def test_read_text_replaces_bad_bytes(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"ok \xff done")
    assert read_text(path) == "ok \ufffd done"
