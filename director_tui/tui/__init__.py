"""The Textual app: screens, widgets and styles over the engine (which never imports this)."""
