"""Error text a person can read: torch's messages can carry whole tensors ("Tracer cannot infer type of
(tensor([[[-1.0065, ..."); in what we print, each tensor is summarised, and the full text goes to a log file.

    summarize("cannot infer type of (tensor([[1., 2.]]), 3)")   # 'cannot infer type of (<tensor>, 3)'
"""

from __future__ import annotations

MAX_LENGTH = 300


def _closing(text: str, start: int) -> int:
    """The index just past the bracket that closes the one opening at `start` (or the end of the text)."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] in "([{":
            depth += 1
        elif text[index] in ")]}":
            depth -= 1
            if depth == 0:
                return index + 1
    return len(text)


def summarize(text: str) -> str:
    """`text` with every `tensor(...)` repr replaced by `<tensor>`, on one line, at most MAX_LENGTH characters."""
    out = []
    index = 0
    while True:
        found = text.find("tensor(", index)
        if found < 0:
            out.append(text[index:])
            break
        out.append(text[index:found])
        out.append("<tensor>")
        index = _closing(text, found + len("tensor"))
    flat = " ".join("".join(out).split())
    return flat if len(flat) <= MAX_LENGTH else flat[:MAX_LENGTH - 1] + "…"


def describe(err: BaseException) -> str:
    """`Type: summarised message` of an exception."""
    message = summarize(str(err).strip())
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def full_text(err: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(err))
