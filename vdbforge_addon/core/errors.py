"""Error types whose message is the one line a user sees (CLI stderr, operator report)."""


class VDBForgeError(Exception):
    """A user-facing failure: the message is a complete one-line explanation."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class PresetError(VDBForgeError):
    """A preset file or a parameter override is invalid."""


class OutputError(VDBForgeError):
    """An output folder cannot be written."""


class WorkerFailure(VDBForgeError):
    """A worker process failed; `failure` holds the structured reason."""

    def __init__(self, failure: dict) -> None:
        self.failure = failure
        if failure.get("user_error"):
            super().__init__(failure.get("message", "unknown error"))
            return
        where = f" ({failure['file']}:{failure['line']})" if failure.get("file") else ""
        super().__init__(f"{failure.get('kind', 'python')} failure{where}: {failure.get('message', 'unknown error')}")
