"""Error text a person can read: torch's messages can carry whole tensors ("Tracer cannot infer type of
(tensor([[[-1.0065, ..."); in what we print, each tensor is summarised, and the full text goes to a log file.

    summarize("cannot infer type of (tensor([[1., 2.]]), 3)")   # 'cannot infer type of (<tensor>, 3)'
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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


def first_line(err: BaseException) -> str:
    """The error's own words: the first non-empty line of its message, summarised (a C++ error's message is
    followed by its stack's frames, which say nothing to a user)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return summarize(lines[0]) if lines else type(err).__name__


@contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Whatever is written to file descriptor 2 inside (an AOTInductor package prints "Error: ..." there before it
    raises), kept out of the user's terminal; the list receives the text on exit."""
    import os
    import sys
    import tempfile

    sys.stderr.flush()
    kept: list[str] = []
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield kept
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept.append(sink.read().decode("utf-8", "replace"))
