"""One screen per stage of the work: home, Gate 1, Gate 2, the run board, bench."""
