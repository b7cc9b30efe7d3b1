"""Every ``--help`` ends with examples that parse (and, where cheap, run), and the top-level
help lists each command's whole first sentence on one line."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from graphsel.cli import cli

WIDTH = 80
"""The terminal width the help is read at (click's widest)."""


def _commands(group: click.Group = cli, path: tuple[str, ...] = ("graphsel",)
              ) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command under ``group``, groups included, with its command path."""
    found: list[tuple[tuple[str, ...], click.Command]] = [(path, group)]
    context = click.Context(group, info_name=path[-1])
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
        else:
            found.append(((*path, name), command))
    return found


COMMANDS = _commands()


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(cli, [*path[1:], "--help"], terminal_width=WIDTH)
    assert result.exit_code == 0, result.output
    return result.output


def _examples(path: tuple[str, ...]) -> list[str]:
    """The example lines of a command's help: those after its ``Examples:`` heading."""
    text = _help(path)
    assert "\n  Examples:\n" in text, f"{' '.join(path)} --help has no examples"
    tail = text.split("\n  Examples:\n", 1)[1]
    return [line.strip() for line in tail.splitlines() if line.strip()]


def _parse(line: str) -> tuple[tuple[str, ...], click.Context]:
    """Parses an example as click would run it (paths need not exist): the command path
    reached and the innermost context."""
    args = shlex.split(line.replace("$GRAPHSEL_DATA", "/data"))
    assert args[0] == "graphsel"
    command: click.Command = cli
    context = cli.make_context("graphsel", args[1:])
    path = ("graphsel",)
    while isinstance(command, click.Group):
        rest = [*context._protected_args, *context.args]
        if not rest:
            break
        name, sub, rest = command.resolve_command(context, rest)
        assert name is not None and sub is not None
        command, path = sub, (*path, name)
        context = command.make_context(name, rest, parent=context)
    return path, context


def test_every_command_is_walked():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"graphsel", "graphsel select", "graphsel datasets", "graphsel datasets prepare",
            "graphsel datasets list", "graphsel run", "graphsel demo", "graphsel expand",
            "graphsel validate"} <= names


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=" ".join)
def test_help_ends_with_examples_that_parse(path):
    lines = _examples(path)
    assert 1 <= len(lines) <= 3, lines
    for line in lines:
        reached, context = _parse(line)
        # an example of a command runs that command (the top level's: any of its commands)
        assert reached[:len(path)] == path, (line, reached)
        assert context.command.name == reached[-1] or reached == ("graphsel",)


def test_examples_are_kept_whole_on_one_line():
    # click rewraps epilogs to the width unless told not to: the longest example must
    # still be one line
    lines = _examples(("graphsel", "select"))
    assert any(len(line) > WIDTH for line in lines)
    assert all(line.startswith("graphsel select ") for line in lines)


def test_top_level_help_shows_whole_one_line_descriptions():
    text = _help(("graphsel",)).split("\nCommands:\n", 1)[1]
    assert "..." not in text
    context = click.Context(cli, info_name="graphsel")
    for name in cli.list_commands(context):
        command = cli.get_command(context, name)
        assert command is not None and command.help is not None
        first = command.help.split(".")[0] + "."
        assert any(line.split() == [name, *first.split()] for line in text.splitlines()), (
            name, first)


def test_a_bad_example_would_fail_to_parse():
    with pytest.raises(click.UsageError):
        _parse("graphsel select --source s.parquet --no-such-flag")


# -- the examples that need only the synthetic default run, against tiny files ------------

CHEAP = ("graphsel validate demo/", "graphsel datasets list",
         "graphsel datasets prepare synthetic", "graphsel expand ",
         "graphsel select --source demo/")


def _cheap_examples() -> list[str]:
    lines = {line for path, _ in COMMANDS for line in _examples(path)}
    return sorted(line for line in lines if line.startswith(CHEAP))


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory) -> Path:
    """The synthetic default at a twentieth of its size, where the examples find ``demo/``."""
    folder = tmp_path_factory.mktemp("examples")
    result = CliRunner().invoke(cli, ["datasets", "prepare", "synthetic", "--scale", "0.05",
                                      "--out", str(folder / "demo")])
    assert result.exit_code == 0, result.output
    return folder


def test_cheap_examples_are_found():
    lines = _cheap_examples()
    assert len(lines) >= 6
    assert {line.split()[1] for line in lines} == {"validate", "datasets", "expand", "select"}


@pytest.mark.parametrize("line", _cheap_examples())
def test_cheap_examples_run(line, tiny_demo, tmp_path, monkeypatch):
    # each in its own folder with the tiny demo/ beside it; a prepare writes its own demo/
    monkeypatch.chdir(tmp_path)
    if not line.startswith("graphsel datasets prepare"):
        (tmp_path / "demo").symlink_to(tiny_demo / "demo")
    else:
        line = line.replace("--scale 0.1", "--scale 0.05")
    result = CliRunner().invoke(cli, shlex.split(line)[1:])
    assert result.exit_code == 0, f"{line}\n{result.output}"
