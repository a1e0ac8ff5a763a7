"""The one exception type that reaches users as a plain message instead of a traceback."""


class HitError(Exception):
    """An error the user can act on; the CLI prints it as one line and exits non-zero."""


class BuildFailed(HitError):
    """A build command failed; the message already holds the log tail and the kept folder."""
