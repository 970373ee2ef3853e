"""What every command prints to and how it fails: the consoles, the exit codes, and the one
line a user error gets."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

EXIT_FAILED_CELLS = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _console(stream) -> Console:
    """Rich console; into a file or pipe, lines stay whole instead of wrapping at 80 columns."""
    return Console(stderr=stream is sys.stderr, width=None if stream.isatty() else 200)


console = _console(sys.stdout)
err_console = _console(sys.stderr)


def user_error(message: str) -> typer.Exit:
    """Print `error: <message>` on one line and return the exit to raise (code 2)."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_USER_ERROR)
