"""The package's exceptions: every error it raises on purpose derives from `HfWhisperContextError`, so that the
command line (and a caller) can tell a clear message about the input from a bug. Imports nothing."""


class HfWhisperContextError(Exception):
    """An input or a setting this package cannot work with; the message says what and what to do."""


class ConfigError(HfWhisperContextError, ValueError):
    """A setting or an argument out of its allowed values."""
