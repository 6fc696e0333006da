"""Errors that the command line reports as one line, without a traceback."""


class UserError(Exception):
    """Bad input or configuration: the message says what is wrong and what to do."""


class ConfigError(UserError):
    """A config file or override is invalid."""


class AudioError(UserError):
    """An audio file cannot be read or is unusable."""
