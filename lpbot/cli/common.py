"""What every command family shares: the one way to build the application context, ``--json``,
rich tables and progress for people, and what Ctrl-C should say."""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

    from lpbot.app import App, Overrides

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_HELP = (
    "lpbot.toml to read (default: $LPBOT_CONFIG, else ./lpbot.toml, else the running devnet's)"
)

# what Ctrl-C should tell the person: what is saved and which command resumes
RESUME: contextvars.ContextVar[str | None] = contextvars.ContextVar("lpbot_resume", default=None)


def set_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """``--config`` at any level: the innermost given wins."""
    if value:
        ctx.meta["lpbot.config"] = value


def config_option(f: F) -> F:
    """``--config PATH`` on a command (also accepted before the command name)."""
    return click.option(
        "--config",
        "config_path",
        metavar="PATH",
        expose_value=False,
        callback=set_config,
        help=CONFIG_HELP,
    )(f)


def json_option(f: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="one JSON document instead of text"
    )(f)


def app(overrides: Overrides | None = None) -> App:
    """The application context, built once per command from the one configuration."""
    from lpbot.app import App

    ctx = click.get_current_context()
    built: App | None = ctx.meta.get("lpbot.app")
    if built is None:
        built = App.load(ctx.meta.get("lpbot.config"), overrides=overrides)
        ctx.meta["lpbot.app"] = built
        ctx.call_on_close(built.close)
    elif overrides is not None and overrides != built.overrides:
        # built first without the command's flags (--rpc, --reports...): they would be
        # ignored, and the command would act on the configured node instead of the one named
        raise RuntimeError("the command's context was built before its flags were applied")
    return built


def resume_hint(text: str) -> None:
    """What Ctrl-C during this command should say (state saved, and the command that resumes)."""
    RESUME.set(text)
    click.get_current_context().meta["lpbot.resume"] = text


def emit_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=str))


def console() -> Console:
    import sys

    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError  # lpbot.cli.main ends quietly, as for any other output

    # a pipe or a file gets whole lines, never columns cut to a terminal's width
    width = None if sys.stdout.isatty() else 240
    return _Console(highlight=False, soft_wrap=False, width=width)


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    empty: str = "none",
    right: Sequence[str] = (),
) -> None:
    """A table for a person (rich); ``empty`` when there are no rows."""
    from rich.markup import escape
    from rich.table import Table

    out = console()
    if not rows:
        if title:
            out.print(f"[bold]{escape(title)}[/bold]")
        out.print(f"  {escape(empty)}")
        return
    t = Table(
        title=escape(title) if title else None,
        title_justify="left",
        box=None,
        header_style="bold",
        pad_edge=False,
    )
    for c in columns:
        t.add_column(c, justify="right" if c in right else "left")
    for row in rows:
        # values are text, never markup: "[missing]" or a path with brackets shows as it is
        t.add_row(*("" if v is None else escape(str(v)) for v in row))
    out.print(t)


@contextmanager
def progress(description: str, *, total: float | None = None) -> Iterator[Callable[..., None]]:
    """A progress bar (or spinner without ``total``) on stderr while a slow step runs; yields
    ``advance(n=1, description=None)``. Silent when stderr is not a terminal."""
    import sys

    if not sys.stderr.isatty():
        yield lambda *_a, **_k: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: float = 1, description: str | None = None) -> None:
            if description is not None:
                bar.update(task, description=description)
            bar.advance(task, n)

        yield advance


def path_or_none(value: str | None) -> Path | None:
    return Path(value) if value else None
