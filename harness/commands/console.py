"""What every command prints to and how it fails: the consoles, the exit codes, and the one
line a user error gets."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import typer
import typer.core
from rich.console import Console
from rich.markup import escape

from harness.config.base import ConfigDeprecation

EXIT_FAILED_CELLS = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _console(stream) -> Console:
    """Rich console; into a file or pipe, lines stay whole instead of wrapping at 80 columns,
    unless COLUMNS says how wide to be."""
    wide = stream.isatty() or os.environ.get("COLUMNS", "").isdigit()
    return Console(stderr=stream is sys.stderr, width=None if wide else 200)


console = _console(sys.stdout)
err_console = _console(sys.stderr)


_plain_warning = warnings.formatwarning


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """An old config key that still works is one `warning:` line, not a traceback-like pair."""
    if issubclass(category, ConfigDeprecation):
        return f"warning: {message}\n"
    return _plain_warning(message, category, filename, lineno, line)


warnings.formatwarning = _one_line_warning


def emit(document, fmt, out_file: Path | None = None) -> None:
    """A document (harness.report.output.Document) in `fmt`: the terminal view on stdout, a
    text format on stdout or into `out_file` (a file that cannot be written: one line, exit 2)."""
    from harness.report.output import Format, render

    rendered = render(document, fmt)
    if out_file is None:
        if Format(fmt) is Format.table:
            console.print(rendered)
        else:
            typer.echo(rendered, nl=False)
        return
    try:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(rendered, str):
            out_file.write_text(rendered, encoding="utf-8")
        else:
            with out_file.open("w", encoding="utf-8") as handle:
                Console(file=handle, width=200).print(rendered)
    except OSError as err:
        raise user_error(f"cannot write {out_file}: {err.strerror or err}") from None


def user_error(message: str) -> typer.Exit:
    """Print `error: <message>` on one line and return the exit to raise (code 2)."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_USER_ERROR)


class OneLineErrors(typer.core.TyperGroup):
    """The command line's own usage errors (an unknown option, a missing argument, a value of
    the wrong type) as one `error:` line, exit 2, like every other user error."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except typer.TyperException as err:
            if type(err).__name__ == "NoArgsIsHelpError":  # shows the help, as typer does
                err.show()
                sys.exit(err.exit_code)
            ctx = getattr(err, "ctx", None)  # a usage error: unknown option, bad value...
            where = f"{ctx.command_path}: " if ctx is not None else ""
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            message = err.format_message().replace("Value error, ", "").replace("\n", " ")
            user_error(f"{where}{message}{hint}")
            sys.exit(err.exit_code if err.exit_code != 1 else EXIT_USER_ERROR)
        except typer.Abort:
            err_console.print("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)
