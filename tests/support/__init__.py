"""Test support shared by the tests, the screenshot script and the bench scripts (never shipped)."""
