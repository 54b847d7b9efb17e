"""The one exception type that means "the user asked for something we cannot do".

The CLI turns a UsageError into a single line on stderr and exit status 2; anything else is a bug
and keeps its traceback. Messages say what is wrong *and* what to do about it.
"""


class UsageError(ValueError):
    """Bad input from the user (a file, a flag, a checkpoint): the message is shown as is."""
