"""The one exception module: every error a user can cause says what is wrong and how to fix it."""


class PloutosError(Exception):
    """Base class of the errors Ploutos raises on purpose."""


class DataError(PloutosError, ValueError):
    """The input market data is unusable; the message names the file, column, ticker or rows."""


class ConfigError(PloutosError, ValueError):
    """A configuration file or override is invalid; the message names the key and the file."""


class ManifestError(PloutosError, ValueError):
    """A saved model does not match the data it is asked to run on."""


class ResourceLimitError(PloutosError, RuntimeError):
    """A run would not fit in the machine's memory; the message names the knobs to turn."""


class TrainingError(PloutosError, RuntimeError):
    """Training cannot go on (e.g. repeated NaN losses)."""


class StorageError(PloutosError, OSError):
    """An artifact cannot be written or read; the message names the path."""
