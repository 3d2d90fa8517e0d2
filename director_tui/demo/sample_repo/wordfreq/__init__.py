"""wordfreq: small text statistics."""

__version__ = "0.1.0"
