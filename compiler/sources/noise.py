"""Known, harmless third-party chatter, silenced by name at its source; everything else stays visible.

    silence_known_chatter()   # idempotent; load_source calls it
"""

from __future__ import annotations

import logging

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
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefix)


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
