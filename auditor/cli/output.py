"""Where the CLI writes: data to stdout, progress and summaries to stderr, a progress display on a terminal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO


class Output:
    """stdout for data, stderr for progress and summaries; rich only where it helps."""

    def __init__(self, stdout: TextIO, stderr: TextIO) -> None:
        self.stdout = stdout
        self.stderr = stderr

    def data(self, text: str) -> None:
        self.stdout.write(text if text.endswith("\n") else text + "\n")
        self.stdout.flush()

    def info(self, text: str) -> None:
        self.stderr.write(text + "\n")
        self.stderr.flush()

    @property
    def interactive(self) -> bool:
        return bool(getattr(self.stderr, "isatty", lambda: False)())


def progress_line(out: Output) -> Callable[[str], None] | None:
    """Progress messages on a terminal only (cron and CI get the summary, not each step)."""
    if not out.interactive:
        return None
    return lambda message: out.info(message)


class PullProgress:
    """A rich progress display on a TTY; nothing otherwise (cron, CI)."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.progress: Any = None

    def __enter__(self) -> Any:
        if not self.out.interactive:
            return None
        # Deferred: rich costs ~0.1 s to import and only a pull on a terminal draws with it.
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"), console=Console(file=self.out.stderr), transient=True,
        )
        self.progress.start()
        return _RichPullObserver(self.progress)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


class _RichPullObserver:
    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.pages = progress.add_task("pages", total=None, status="")
        self.details: Any = None
        self.retries = 0

    def on_total(self, users: int, pages: int) -> None:
        self.progress.update(self.pages, total=pages, status=f"{users:,} users")

    def on_page(self, endpoint: str, users: int) -> None:
        self.progress.advance(self.pages)

    def on_retry(self, endpoint: str, reason: str, wait_seconds: float) -> None:
        self.retries += 1
        self.progress.update(self.pages, status=f"retry {self.retries}: {reason}, waiting {wait_seconds:.0f} s")

    def on_detail(self, done: int, total: int) -> None:
        if self.details is None:
            self.details = self.progress.add_task("user details", total=total, status="")
        self.progress.update(self.details, completed=done, total=total)
