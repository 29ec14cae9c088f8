"""What the build's stages share: copying kept files into the staging repository, and an internal error told as one
model's (or pipeline's) problem, so that the others still build and are kept."""

from __future__ import annotations

import shutil

from compiler.errors import Problem


def link_or_copy(src: str, dst: str) -> object:
    import os

    try:
        os.link(src, dst)
        return dst
    except OSError:
        return shutil.copy2(src, dst)



def internal_problem(name: str, err: Exception) -> Problem:
    """An exception that is no user error, raised while exporting one model: said as that model's problem (its
    traceback in the model's log), so that the others still build and are kept."""
    from compiler.export.messages import describe, full_text

    return Problem(f"internal error while exporting: {describe(err)}", model=name,
                   hint="a bug in the compiler or a library it calls: please report it with the log; the other "
                        "models were built and kept", details=full_text(err))
