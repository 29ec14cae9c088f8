"""Known, harmless third-party chatter, silenced by name at its source; everything else stays visible.

    silence_known_chatter()   # idempotent; load_source calls it
    with kept_out(["transformers.modeling_utils"], "LOAD REPORT"): ...   # one message, while the block runs
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

#: (logger, the start of a message) pairs that say nothing about the user's model or our export.
KNOWN = [
    # transformers 5 logs this whenever a model's loss_function is looked at (tracing walks attributes) and its
    # config has no loss_type; inference never computes a loss.
    ("transformers.modeling_utils", "`loss_type=None` was set in the config but it is unrecognized"),
    # torch's C++ extension builder logs this on every AOTInductor compile on a machine without CUDA; the packages
    # compiled here are CPU packages, which need no CUDA runtime (the build says which device it compiled for).
    ("torch.utils.cpp_extension", "No CUDA runtime is found"),
]


class _Drop(logging.Filter):
    """Drops the records whose message starts with `prefix` (or, `anywhere`, holds it)."""

    def __init__(self, prefix: str, anywhere: bool = False) -> None:
        super().__init__()
        self.prefix, self.anywhere = prefix, anywhere

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.getMessage())
        return not (self.prefix in message if self.anywhere else message.startswith(self.prefix))


@contextmanager
def kept_out(names: Sequence[str], text: str) -> Iterator[None]:
    """The records of loggers `names` that hold `text` are dropped while the block runs (a message we say
    ourselves, in our words, instead)."""
    drop = _Drop(text, anywhere=True)
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addFilter(drop)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(drop)


#: torch 2.14's FutureWarning on every torch.jit call (load, script, save, freeze, trace): the build says TorchScript's
#: deprecation once, with what to do about it (build/models.py's target warnings), instead of once per call site.
JIT_DEPRECATED = r"`torch\.jit\.\w+` is deprecated"


def silence_known_chatter() -> None:
    import warnings

    warnings.filterwarnings("ignore", message=JIT_DEPRECATED, category=FutureWarning)
    for name, prefix in KNOWN:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Drop) and f.prefix == prefix for f in logger.filters):
            logger.addFilter(_Drop(prefix))
