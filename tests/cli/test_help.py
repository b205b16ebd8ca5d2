"""The command line's help, as printed: text in brackets (``[options]``, a TOML table) is
escaped, so that rich prints it instead of taking it for markup and dropping it; and the
README's synopsis names every option that ``--help`` shows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

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


def _synopsis() -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## The command line") :]
    return section[section.index("```text") : section.index("```", section.index("```text") + 3)]


def test_the_readme_synopsis_names_every_option() -> None:
    """Each top-level command's lines name each of its options; a group's, anywhere in the
    synopsis (its subcommands share lines)."""
    synopsis = _synopsis()
    missing = []
    for path, command in _commands(typer.main.get_command(app), []):
        if getattr(command, "commands", None) or not path:
            continue
        if len(path) == 1:  # from "clearhouse NAME" to the next "clearhouse"
            start = synopsis.index(f"clearhouse {path[0]} ")
            text = synopsis[start : synopsis.find("\nclearhouse ", start)]
        else:
            text = synopsis
        missing += [(" ".join(path), option) for p in command.params for option in p.opts
                    if option.startswith("--") and option not in text]  # fmt: skip
    assert not missing, missing
