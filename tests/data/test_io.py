"""The path guard, atomic writes under interrupts, output formats and the timestamp rule."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from graphsel.cli import cli, main
from graphsel.cli._common import Terminated
from graphsel.data.io import (
    OutputFolder,
    atomic_path,
    check_paths,
    remove_stale_temporaries,
)
from graphsel.data.log import (
    InteractionLog,
    check_pair,
    check_timestamps,
    read_log,
    read_pair,
    write_log,
)
from graphsel.errors import InputError


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.parquet").write_bytes(b"PAR1")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "part-0.parquet").write_bytes(b"PAR1")
    return tmp_path


def _refused(match: str, *args, **kwargs) -> None:
    with pytest.raises(InputError, match=match):
        check_paths(*args, **kwargs)


@pytest.mark.parametrize("spelling", ["s.parquet", "./s.parquet", "{root}/s.parquet",
                                      "logs/../s.parquet", "../{name}/s.parquet"])
def test_an_output_file_equal_to_an_input_is_refused_however_spelt(ws, spelling):
    out = spelling.format(root=ws, name=ws.name)
    _refused(rf"^--out {out}.* is the input --source s\.parquet", {"--source": "s.parquet"},
             files={"--out": out})


def test_links_resolve_to_the_input(ws):
    (ws / "sym.json").symlink_to("s.parquet")
    os.link(ws / "s.parquet", ws / "hard.json")
    for name in ("sym.json", "hard.json"):
        _refused(f"--report {name}", {"--source": "s.parquet"}, files={"--report": name})


def test_outputs_inside_an_input_folder_are_refused(ws):
    _refused("lies inside the input folder --source logs", {"--source": "logs"},
             files={"--out": "logs/new.parquet"})
    _refused("lies inside the input --source logs", {"--source": "logs"},
             folders={"--plots": "logs/plots"})
    _refused("is the input --source logs", {"--source": "logs"}, folders={"--plots": "logs"})


def test_an_output_folder_may_hold_inputs_it_does_not_overwrite(ws):
    check_paths({"--source": "s.parquet"}, folders={"--out": OutputFolder(".", ("a.json",))})
    _refused(r"--out \. \(.*\) would overwrite s\.parquet", {"--source": "s.parquet"},
             folders={"--out": OutputFolder(".", ("s.parquet",))})
    _refused(r"--plots \. \(.*\) holds the input --source s\.parquet", {"--source": "s.parquet"},
             folders={"--plots": "."})


def test_two_outputs_on_one_path_are_refused(ws):
    _refused(r"--report \./o\.json \(.*\) is the same path as --out o\.json \(", {},
             files={"--out": "o.json", "--report": "./o.json"})


def test_valid_paths_pass_and_none_is_skipped(ws):
    check_paths({"--source": "s.parquet", "--truth": None, "--target": ["logs"]},
                files={"--out": "o.json", "--report": None}, folders={"--plots": "plots"},
                logs={"--selected": "sel.csv"})


def test_output_logs_must_have_a_known_extension(ws):
    _refused(r"sel\.json: unknown output format '\.json'; use \.parquet", {},
             logs={"--out": "sel.json"})


def _log() -> InteractionLog:
    return InteractionLog.from_columns([1, 2, 2], ["a", "b", "a"], [5, 6, 7], [1, 0, 1], "s",
                                       price=[1.5, 2.0, 3.0])


@pytest.mark.parametrize("name", ["x.csv", "x.csv.gz", "x.tsv", "x.parquet", "x.pq", "x"])
def test_write_log_follows_the_extension_and_reads_back(tmp_path, name):
    path = write_log(_log(), tmp_path / name)
    is_parquet = path.read_bytes()[:4] == b"PAR1"
    assert is_parquet == (name in ("x.parquet", "x.pq", "x"))
    back = read_log(path)
    assert back.table.column("price").to_pylist() == [1.5, 2.0, 3.0]
    assert back.user_id.tolist() == [1, 2, 2] and back.ts.tolist() == [5, 6, 7]


def test_write_log_refuses_an_unknown_extension_and_writes_nothing(tmp_path):
    with pytest.raises(InputError, match="x.json: unknown output format '.json'"):
        write_log(_log(), tmp_path / "x.json")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, Terminated, RuntimeError])
def test_atomic_path_removes_its_temporary_file_on_any_exception(tmp_path, interrupt):
    (tmp_path / "o.json").write_text("old")
    with pytest.raises(interrupt), atomic_path(tmp_path / "o.json") as tmp:
        tmp.write_text("half")
        raise interrupt()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json"]
    assert (tmp_path / "o.json").read_text() == "old"


def test_leftovers_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".o.json.{dead.pid}.abc123.tmp"
    live = tmp_path / f".o.json.{os.getppid()}.abc123.tmp"   # a running process's
    other = tmp_path / f".p.json.{dead.pid}.abc123.tmp"      # another file's
    for path in (stale, live, other):
        path.write_text("x")
    write_log(_log(), tmp_path / "o.json.parquet")  # not o.json: leaves them
    assert stale.exists()
    assert remove_stale_temporaries(tmp_path / "o.json") == [stale]
    assert live.exists() and other.exists()


def test_a_log_folder_skips_hidden_and_underscore_files(tmp_path):
    write_log(_log(), tmp_path / "part-0.parquet")
    write_log(_log(), tmp_path / ".part-1.parquet")
    (tmp_path / "_SUCCESS").write_text("")
    assert len(read_log(tmp_path)) == 3


def test_ts_unit_converts_to_seconds(tmp_path):
    table = _log().table.set_column(2, "ts", pa.array([1_500_000_000_123, 2_000, 3_999]))
    pq.write_table(table, tmp_path / "ms.parquet")
    assert read_log(tmp_path / "ms.parquet", ts_unit="ms").ts.tolist() == [1_500_000_000, 2, 3]
    with pytest.raises(InputError, match="Could not resolve ts_unit 'h'"):
        read_log(tmp_path / "ms.parquet", ts_unit="h")


def test_the_timestamp_rule_uses_the_clock_for_the_future():
    check_timestamps(np.array([100, 2_000_000_000]), "x", now=2_000_000_000)
    with pytest.raises(InputError, match=r"x: column 'ts' has value 2000086401 at row 1 "
                                         r"\(2033-05-19\), which is in the future"):
        check_timestamps(np.array([100, 2_000_086_401]), "x", now=2_000_000_000)


@pytest.mark.data
def test_real_logs_pass_the_timestamp_rule(movielens_1m_path, taobao_path):
    from graphsel.data.datasets import get_dataset

    for name, options in (("movielens-1m", {"path": movielens_1m_path}),
                          ("taobao-userbehavior", {"path": taobao_path}),
                          ("synthetic", {"scale": 0.05})):
        split = get_dataset(name)(**options)
        for log in (split.source, split.target):
            check_timestamps(log.ts, log.name, now=1_700_000_000)  # even as of Nov 2023


def test_check_pair_accepts_a_pair_select_accepts():
    source = InteractionLog.from_columns([1, 2, 3, 4, 5], [1, 1, 2, 2, 3], [0] * 5,
                                         [0, 1, 0, 1, 0], "s", f=[1.0] * 5)
    target = InteractionLog.from_columns([1, 6, 7, 8, 9], [9] * 5, [0] * 5, [1, 0, 0, 0, 1],
                                         "t", f=[2.0] * 5)
    check_pair(*read_pair(source, target))
    check_pair(source, target[[0, 1]], min_rows=2)
    check_pair(source, target[[1, 2, 3, 4, 0]].with_index(target.index)[[0, 1, 2, 3, 4]],
               both_labels=False)


def test_interrupts_exit_130_and_143_with_one_line(tmp_path, monkeypatch):
    import graphsel.cli.datasets as datasets_cli

    for interrupt, code, words in ((KeyboardInterrupt, 130, "interrupted (Ctrl-C)"),
                                   (Terminated, 143, "terminated by SIGTERM")):
        def stop(*args, interrupt=interrupt, **kwargs):
            raise interrupt()

        monkeypatch.setattr(datasets_cli, "prepare", stop)
        result = CliRunner().invoke(cli, ["datasets", "prepare", "synthetic", "--out",
                                          str(tmp_path / "o")])
        assert result.exit_code == code
        assert result.stderr == f"error: {words}; unfinished output files were removed\n"
        assert main(["datasets", "prepare", "synthetic", "--out", str(tmp_path / "o")]) == code


def test_main_returns_the_exit_code(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.parquet")]) == 2
    assert main(["datasets", "list"]) == 0
    assert main(["--bogus"]) == 2
    assert main(["--help"]) == 0
    err = capsys.readouterr().err
    assert "nope.parquet: no such file or directory" in err
