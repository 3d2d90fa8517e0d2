"""One module per ``director`` subcommand: ``register(subparsers)`` and a handler."""
