"""The one exception type that reaches users as a single sentence."""


class MocapError(Exception):
    """A failure the user can act on; its message is one sentence: what went wrong, what to do.

    The CLI prints the message (no traceback) and exits with ``exit_code``.
    """

    exit_code: int = 1

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
