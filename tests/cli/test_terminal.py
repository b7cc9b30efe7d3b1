"""The terminal: progress bars on a terminal only (or as --progress/--no-progress say),
--quiet, errors and warnings on clean lines, rounded JSON."""

from __future__ import annotations

import io
import json
import re
import sys

import click
import pytest
from click.testing import CliRunner
from tqdm import tqdm

from graphsel.cli import cli
from graphsel.cli._common import GraphselGroup, echo_note, emit, show_progress
from graphsel.data.log import InteractionLog, write_log
from graphsel.errors import InputError
from graphsel.select.config import SelectionConfig


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("progress", "quiet", "as_json", "terminal", "shown"), [
    (None, False, False, True, True),     # default: on a terminal
    (None, False, False, False, False),   # default: not in a pipe or a file
    (None, False, True, True, False),     # nor with --json
    (True, False, False, False, True),    # --progress: always
    (True, False, True, False, True),
    (False, False, False, True, False),   # --no-progress: never
    (None, True, False, True, False),     # --quiet: never
    (False, True, False, True, False),
])
def test_show_progress(progress, quiet, as_json, terminal, shown):
    stream = _Terminal() if terminal else io.StringIO()
    assert show_progress(progress, quiet, as_json, stream) is shown


def test_progress_and_quiet_contradict():
    with pytest.raises(InputError, match="--progress and --quiet"):
        show_progress(True, quiet=True)


@pytest.fixture
def pair(tmp_path) -> list[str]:
    """Source a-1 b-1 b-2 c-2 c-3 x-8 y-8 y-9; the target shares user a and items 1, 3."""
    source = InteractionLog.from_columns(
        ["a", "b", "b", "c", "c", "x", "y", "y"], [1, 1, 2, 2, 3, 8, 8, 9],
        list(range(100, 108)), [1, 0, 0, 1, 0, 1, 1, 0], "source")
    target = InteractionLog.from_columns(["a", "a", "d"], [1, 3, 3], [200, 201, 202],
                                         [1, 0, 1], "target")
    write_log(source, tmp_path / "source.parquet")
    write_log(target, tmp_path / "target.parquet")
    return ["--source", str(tmp_path / "source.parquet"), "--target",
            str(tmp_path / "target.parquet")]


@pytest.fixture
def built(monkeypatch) -> list[bool]:
    """The ``progress`` of every selector ``select`` builds."""
    seen: list[bool] = []
    build = SelectionConfig.build

    def spy(self, progress=False):
        seen.append(progress)
        return build(self, progress)

    monkeypatch.setattr(SelectionConfig, "build", spy)
    return seen


@pytest.mark.parametrize(("flags", "shown"), [
    ([], False), (["--progress"], True), (["--no-progress"], False), (["--quiet"], False)])
def test_select_passes_the_progress_it_resolved(pair, tmp_path, built, flags, shown):
    # CliRunner's stderr is not a terminal: bars only with --progress
    result = CliRunner().invoke(cli, ["select", *pair, "--stages", "graph",
                                      "--out", str(tmp_path / "out.parquet"), *flags])
    assert result.exit_code == 0, result.output
    assert built == [shown]


def test_no_bar_is_drawn_when_stderr_is_not_a_terminal(pair, tmp_path):
    for command in (["select", "--stages", "graph"], ["expand"]):
        result = CliRunner().invoke(cli, [*command, *pair, "--out", str(tmp_path / "o.pq")])
        assert result.exit_code == 0, result.output
        assert result.stderr == ""


def test_expand_draws_its_steps_with_progress(pair, tmp_path):
    result = CliRunner().invoke(cli, ["expand", *pair, "--out", str(tmp_path / "o.pq"),
                                      "--progress"])
    assert result.exit_code == 0, result.output
    assert "expand:" in result.stderr
    assert [step in result.stderr for step in ("read]", "expand]", "write]")] == [True] * 3
    assert "\r" in result.stderr  # the bar's line, cleared at the end (leave=False)
    assert result.stdout.startswith("expansion over ")


def test_select_draws_its_bar_with_progress_off_a_terminal(pair, tmp_path):
    result = CliRunner().invoke(cli, ["select", *pair, "--stages", "graph",
                                      "--out", str(tmp_path / "o.pq"), "--progress"])
    assert result.exit_code == 0, result.output
    assert "select:" in result.stderr


def test_quiet_prints_nothing_but_still_writes(pair, tmp_path):
    out = tmp_path / "out.parquet"
    result = CliRunner().invoke(cli, ["select", *pair, "--stages", "graph", "--out", str(out),
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output == "" and out.is_file()
    as_json = CliRunner().invoke(cli, ["select", *pair, "--stages", "graph", "--out",
                                       str(out), "--quiet", "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["selected"] == 5


def test_progress_with_quiet_exits_2(pair, tmp_path):
    result = CliRunner().invoke(cli, ["expand", *pair, "--out", str(tmp_path / "o.pq"),
                                      "--progress", "--quiet"])
    assert result.exit_code == 2
    assert result.stderr == ("error: --progress and --quiet contradict each other; give one "
                             "of them\n")


def _failing_group() -> click.Group:
    @click.group(cls=GraphselGroup)
    def group() -> None:
        """A group whose command fails while its bar draws."""

    @group.command("work")
    @click.option("--leave/--no-leave", default=True)
    def work(leave: bool) -> None:
        # a bar left open (not in a with block), drawn even though stderr is no terminal
        bar = tqdm(total=10, desc="work", disable=False, leave=leave, file=sys.stderr)
        bar.update(3)
        raise InputError("the input is bad")

    return group


@pytest.mark.parametrize("leave", ["--leave", "--no-leave"])
def test_an_error_starts_a_clean_line_after_a_bar(leave):
    result = CliRunner().invoke(_failing_group(), ["work", leave])
    assert result.exit_code == 2
    stderr = result.stderr
    assert "work:" in stderr  # the bar was drawn
    before, error = stderr.rsplit("error: ", 1)
    assert error == "the input is bad\n"  # nothing drawn after it
    assert before.endswith(("\n", "\r"))  # the bar's line ended (or was cleared) first
    # the last line as a terminal shows it holds the error alone
    assert re.split(r"[\r\n]", stderr.rstrip("\n"))[-1] == "error: the input is bad"


def test_a_note_during_a_bar_gets_its_own_line():
    @click.command()
    def note() -> None:
        with tqdm(total=2, desc="run", disable=False, file=sys.stderr) as bar:
            bar.update(1)
            echo_note("warning: a unit was recomputed")
            bar.update(1)

    result = CliRunner().invoke(note, [])
    assert "run:" in result.stderr
    # cleared bar, the note, the bar drawn again: the note is a line of its own
    assert "warning: a unit was recomputed" in re.split(r"[\r\n]", result.stderr)


def test_json_floats_are_rounded_and_ints_stay_ints(capsys):
    emit(True, {"max_degree": 75.11000000000013, "rows": 1595, "auc": 0.812345678}, "")
    assert json.loads(capsys.readouterr().out) == {"max_degree": 75.11, "rows": 1595,
                                                    "auc": 0.812346}
    emit(False, {}, "text", quiet=True)
    assert capsys.readouterr().out == ""
