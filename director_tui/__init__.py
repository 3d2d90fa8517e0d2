"""director-tui: hand a coding task to a team of AI coding agents and stay in control.

The package root stays import-light: the engine lives in ``director_tui.engine`` and the
Textual app in ``director_tui.tui``, which only the TUI branch of the CLI imports.
"""

__version__ = "0.1.0"
