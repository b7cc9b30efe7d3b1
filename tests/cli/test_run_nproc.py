"""`graphsel run --nproc 2`: two data-parallel ranks report what one process reports."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from graphsel.cli import cli
from tests.transfer.tiny import TINY_RUN_CONFIG

CONFIG = TINY_RUN_CONFIG.replace("epochs: 1, batch_size: 256", "epochs: 2, batch_size: 128")


def _metrics(payload: dict) -> dict:
    return {(r["strategy"], r["seed"], r["period"]): (r["auc"], r["logloss"])
            for r in payload["periods"]}


def test_two_ranks_equal_one_process(tmp_path: Path):
    config = tmp_path / "exp.yaml"
    config.write_text(CONFIG)
    runs = {}
    for nproc in ("1", "2"):
        result = CliRunner().invoke(cli, ["run", "--config", str(config), "--json", "--nproc",
                                          nproc, "--run-dir", str(tmp_path / f"runs{nproc}")])
        assert result.exit_code == 0, result.output
        runs[nproc] = json.loads(result.stdout)
    one, two = _metrics(runs["1"]), _metrics(runs["2"])
    assert one.keys() == two.keys() and len(one) == 2
    for key in one:
        assert abs(one[key][0] - two[key][0]) <= 1e-5 and abs(one[key][1] - two[key][1]) <= 1e-5
    # the ranks split each batch, not the data: as many optimiser steps as one process
    assert ([e["effort"]["steps"] for e in runs["1"]["effort"]]
            == [e["effort"]["steps"] for e in runs["2"]["effort"]])


def test_nproc_must_be_positive(tmp_path: Path):
    config = tmp_path / "exp.yaml"
    config.write_text(CONFIG)
    result = CliRunner().invoke(cli, ["run", "--config", str(config), "--nproc", "0"])
    assert result.exit_code == 2 and "--nproc must be an integer >= 1, got 0" in result.output
