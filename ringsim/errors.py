"""Exceptions raised for bad input; the command line turns them into ``error: …`` and exit 2."""


class RingsimError(Exception):
    """Base class: a one-line message naming what is wrong (file, key or field, and what was expected)."""


class ConfigError(RingsimError):
    """An invalid configuration value, unknown key or malformed TOML."""


class InputError(RingsimError):
    """A data file or array that cannot be used: unreadable, missing tree or branch, bad values."""


class FitError(RingsimError):
    """A fit that did not converge or produced an invalid covariance."""
