"""What the checks tests share to read a chapter's ``*_mistakes`` tables."""


def named(mistakes: dict, start: str):
    """The one entry of ``{explanation: value}`` whose explanation starts with ``start``."""
    (value,) = [v for k, v in mistakes.items() if k.startswith(start)]
    return value
