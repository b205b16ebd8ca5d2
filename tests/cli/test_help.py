"""The command line's help, as printed: text in brackets (``[options]``, a TOML table) is
escaped, so that rich prints it instead of taking it for markup and dropping it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import typer.main
from typer.testing import CliRunner

from clearhouse.cli import app

UNESCAPED_BRACKET = re.compile(r"(?<!\\)\[")


def _commands(command: click.Command, path: list[str]) -> Iterator[tuple[list[str], click.Command]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, [*path, name])


def test_no_help_text_holds_an_unescaped_bracket() -> None:
    found = [
        (" ".join(path), text)
        for path, command in _commands(typer.main.get_command(app), [])
        for text in [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]
        if UNESCAPED_BRACKET.search(text)
    ]
    assert not found, found


def test_stress_help_names_the_options_table() -> None:
    shown = CliRunner().invoke(app, ["stress", "--help"], env={"COLUMNS": "200"}).output
    assert "(the [options] defaults, unless the scenario has an [options] table)" in shown
