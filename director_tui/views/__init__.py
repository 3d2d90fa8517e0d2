"""Plain-terminal views (rich) for the CLI. No textual here."""
