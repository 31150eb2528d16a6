"""Progress of a long command: a bar on a terminal, one plain line per step elsewhere.

rich draws its bar only on a terminal, but on leaving it writes the last frame anywhere — a pipe, a file, the
service's journal (``modelyard warmup`` before ``serve``) got "⠋ loading x ━━━━━━━━ 0:00:04" and nothing of the steps.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import Progress, ProgressColumn, TaskID


class Steps:
    """The subset of :class:`rich.progress.Progress` the commands use; off a terminal each new description is a line
    on ``console`` (the step that starts) and the bar is not drawn."""

    def __init__(self, console: Console, *columns: ProgressColumn, transient: bool = False) -> None:
        self._console = console
        self._bar = Progress(*columns, console=console, transient=transient) if console.is_terminal else None
        self._tasks = 0

    def __enter__(self) -> Steps:
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)

    def add_task(self, description: str, total: float) -> TaskID:
        """A bar; off a terminal nothing is said until a step starts (``update`` with its description)."""
        if self._bar is not None:
            return self._bar.add_task(description, total=total)
        self._tasks += 1
        return TaskID(self._tasks)

    def update(self, task: TaskID, description: str) -> None:
        if self._bar is not None:
            self._bar.update(task, description=description)
        else:
            self._console.print(f"{description}…", highlight=False, markup=False, soft_wrap=True)

    def advance(self, task: TaskID, steps: float = 1) -> None:
        if self._bar is not None:
            self._bar.advance(task, steps)
