"""`graphsel run` resumes after SIGKILL with the same final JSON; --fresh; a run dir inside
an input folder is refused before anything is written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
from click.testing import CliRunner

from graphsel.cli import cli
from tests.transfer.tiny import strip_seconds

CONFIG = """
dataset: {name: synthetic, options: {scale: 0.05}}
selection: {stages: [graph, da], da: {model: logistic, cv: 2, embedding_dim: 4}}
model: {embed_dim: 4, hidden: [16]}
train: {epochs: 1, batch_size: 256, num_threads: 1}
strategies: [target_only, selected_weighted, merge_all]
domain_feature: "off"
seeds: 2
n_boot: 20
"""
UNITS = 6  # 3 strategies x 2 seeds
MAIN = "import sys; from graphsel.cli import main; sys.exit(main(sys.argv[1:]))"



def _graphsel(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", MAIN, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_sigkill_then_rerun_gives_the_uninterrupted_json(tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text(CONFIG)
    runs = tmp_path / "runs"
    args = ("run", "--config", str(config), "--json", "--run-dir", str(runs))

    killed = _graphsel(*args)
    deadline = time.monotonic() + 120
    while not list(runs.glob("*/units/*.npz")):
        assert killed.poll() is None, killed.communicate()[1]
        assert time.monotonic() < deadline, "no unit saved in 120 s"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    assert killed.returncode == -signal.SIGKILL
    (run_dir,) = runs.iterdir()
    saved = sorted(p.name for p in (run_dir / "units").glob("*.npz"))
    assert 1 <= len(saved) < UNITS
    selection_written = (run_dir / "selection.npz").stat().st_mtime_ns
    kept = {}  # (strategy, seed) -> its records as saved before the kill
    for path in (run_dir / "units").glob("*.npz"):
        with np.load(path) as npz:
            records = json.loads(str(npz["meta"]))["records"]
        kept[records[0]["strategy"], records[0]["seed"]] = records

    rerun = _graphsel(*args)
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert (run_dir / "selection.npz").stat().st_mtime_ns == selection_written  # not refitted
    assert len(list((run_dir / "units").glob("*.npz"))) == UNITS
    resumed = json.loads(stdout)

    reference = CliRunner().invoke(cli, [*args[:-1], str(tmp_path / "other-runs")])
    assert reference.exit_code == 0, reference.output
    uninterrupted = json.loads(reference.stdout)
    assert strip_seconds(resumed) == strip_seconds(uninterrupted)
    # the units saved before the kill were loaded, not retrained: their timings came back
    for strategy, seed in kept:
        assert [r for r in resumed["periods"]
                if (r["strategy"], r["seed"]) == (strategy, seed)] == kept[strategy, seed]


def test_fresh_starts_over(tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text(CONFIG.replace("seeds: 2", "seeds: 1").replace(
        "[target_only, selected_weighted, merge_all]", "[target_only]"))
    args = ["run", "--config", str(config), "--json", "--run-dir", str(tmp_path / "runs")]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert sorted(p.name for p in run_dir.rglob("*")) == ["target_only.seed0.npz", "units"]
    (run_dir / "units" / "stale.npz").write_text("from an earlier run")
    again = CliRunner().invoke(cli, [*args, "--fresh"])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in run_dir.rglob("*")) == ["target_only.seed0.npz", "units"]
    assert strip_seconds(json.loads(again.stdout)) == strip_seconds(json.loads(first.stdout))


def test_a_run_dir_inside_an_input_folder_is_refused_before_any_write(tmp_path):
    source = tmp_path / "source"  # a Parquet folder read as one log
    source.mkdir()
    (source / "part-0.parquet").write_bytes(b"PAR1")
    (tmp_path / "t.csv").write_text("user_id,item_id,ts,domain,label\n")
    config = tmp_path / "exp.yaml"
    config.write_text(f"source: {source}\ntarget: {tmp_path / 't.csv'}\n")
    before = sorted(tmp_path.rglob("*"))
    result = CliRunner().invoke(cli, ["run", "--config", str(config), "--run-dir",
                                      str(source / "runs")])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: --run-dir") and "lies inside the input source" in line
    assert sorted(tmp_path.rglob("*")) == before
