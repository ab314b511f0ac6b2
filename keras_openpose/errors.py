"""The one exception type for bad user input (files, annotations, arguments).

Every :class:`DataError` message names the file or argument and the problem on one line; the CLI
prints it without a traceback and exits with status 2.
"""


class DataError(Exception):
    """Bad input: a missing or unreadable file, an annotation file that is not COCO, a bad option."""
