"""One exception tree for the whole compiler.

User errors carry everything a person needs to fix their input (file, line,
model, field, hint) and are printed without a traceback; anything else that
escapes is a bug in the compiler and keeps its traceback.

    try:
        build(...)
    except UserError as err:
        print(err.render())
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One finding about the user's input, located as precisely as we can."""

    message: str
    file: Path | None = None
    line: int | None = None
    column: int | None = None
    model: str | None = None
    field: str | None = None
    hint: str | None = None
    #: the rule it breaks (compiler/rulebook.py), where one does
    code: str | None = None
    #: the full text behind a summarised message (a traceback, a tensor's repr): written to a log file, not printed
    details: str | None = dataclasses.field(default=None, compare=False, repr=False)

    def where(self) -> str:
        if self.file is None:
            return ""
        text = str(self.file)
        if self.line is not None:
            text += f":{self.line}"
            if self.column is not None:
                text += f":{self.column}"
        return text

    def render(self) -> str:
        head = []
        if self.where():
            head.append(self.where())
        if self.code:
            head.append(self.code)
        if self.model:
            head.append(f"model '{self.model}'")
        if self.field:
            head.append(self.field)
        text = ": ".join(head + [self.message]) if head else self.message
        if self.hint:
            text += f"\n    hint: {self.hint}"
        # What users typed may hold characters no terminal can print (lone surrogates): escape them.
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


class CompilerError(Exception):
    """Base of every error the compiler raises on purpose."""


class UserError(CompilerError):
    """Bad input: one or more problems the user can fix. Exit code 1."""

    def __init__(self, problems: list[Problem] | Problem, causes: list[BaseException] | None = None):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        self._causes = list(causes or [])
        super().__init__(self.render())

    def underlying(self) -> list[BaseException]:
        """The exceptions underneath (a model factory's own, for one), for `--traceback`: given ones, else the
        exception this one was raised from or while handling (kept even by `raise ... from None`)."""
        if self._causes:
            return list(self._causes)
        cause = self.__cause__ or self.__context__
        return [cause] if cause is not None else []

    def render(self) -> str:
        lines = [p.render() for p in self.problems]
        if len(self.problems) > 1:
            lines.insert(0, f"{len(self.problems)} problems:")
        return "\n".join(lines)


class ManifestError(UserError):
    """The manifest does not parse or does not validate."""


class SourceError(UserError):
    """A model's source could not be turned into an nn.Module."""


class ExportError(UserError):
    """The model could not be exported, or the export does not match eager PyTorch."""


class RepositoryError(UserError):
    """The output repository cannot be written (lock, permissions, layout)."""


class ServerError(UserError):
    """tritonserver could not be found, started, or did not load a model."""


class ServerUnanswered(ServerError):
    """tritonserver gave no answer to a request of ours: not in time (it hangs), or it refused or closed the
    connection (it died). The message names what was asked and whether the server still runs, and cites its log."""


class LoadUnanswered(ServerUnanswered):
    """tritonserver gave no answer to a model's load request: not in time (the model still initialises, or the
    server hangs), or it closed the connection (it died). A caller that judges the server restarts it."""
