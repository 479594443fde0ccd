"""cutover: carry an organisation through a mail migration safely, one checkpoint at a time."""

__version__ = "0.1.0"
