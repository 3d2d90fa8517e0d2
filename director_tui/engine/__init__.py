"""The headless engine. Never imports textual or rich: the CLI and the TUI are views over it."""
