"""The one exception type the command line turns into a one-line error and exit status 2.

Every module raises a subclass of UserError for input a person must fix (a bad argument, a
missing model, a corrupt report, a broken matrix.yaml); anything else is a bug and keeps
its traceback.
"""


class UserError(Exception):
    """Bad input; the message is one line that names what to fix."""

    exit_code = 2
