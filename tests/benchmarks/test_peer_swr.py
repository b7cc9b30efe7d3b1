"""``benchmarks/peer_swr.py --small`` on a tiny ML-1M-like folder: every model trains, the
tables carry the published numbers, the chosen runs come back as JSON."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.data.datasets.atomic import write_ml1m_folder

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "peer_swr.py"
MODELS = ["base", "shared_bottom", "mmoe", "ple", "star", "pepnet"]
AGES = ["1", "18", "25", "35", "56"]
GENRES = ["Comedy", "Drama", "Horror"]


def write_folder(folder: Path) -> Path:
    """30 users in every age group, 12 movies, 600 ratings; liked iff the user's and the
    movie's parities agree, so there is something to learn."""
    rng = random.Random(0)
    items = [("item_id:token", "movie_title:token", "release_year:float", "genre:token")]
    items += [(f"M{i} (1990)", f"M{i}", "1990", GENRES[i % 3]) for i in range(12)]
    users = [("user_id:token", "age:float", "gender:token", "occupation:float",
              "zip_code:token")]
    users += [(f"1m_{u}", AGES[u % 5], "FM"[u % 2], str(u % 4), f"{u % 7:05d}")
              for u in range(30)]
    inter = [("user_id:token", "item_id:token", "rating:float", "timestamp:float")]
    for n in range(600):
        u, i = rng.randrange(30), rng.randrange(12)
        inter.append((f"1m_{u}", f"M{i} (1990)", "5" if (u + i) % 2 == 0 else "2", str(n)))
    return write_ml1m_folder(folder, items, users, inter)


def test_small_peer_check_prints_both_tables_and_the_targets(tmp_path):
    out = tmp_path / "runs.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--small", "--device", "cpu",
                          "--path", str(write_folder(tmp_path)), "--json", str(out)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("peer_swr: ML-1M SWR split, models base, shared_bottom")
    assert "; plain: D=16, FM term off, lr/embedding lr grid 0.001/0.03; fm: D=32, FM term on" \
        in lines[0]
    assert "; cpu, 1 threads, torch " in lines[0]
    assert "fields user_id, item_id, gender, occupation, zip, first_genre, domain_id, age" \
        in lines[1]
    auc_table = run.stdout.split("\n\n")[0].splitlines()
    rows = {line.split()[0]: line for line in auc_table if line.split()}
    assert "Shared-Bottom" in rows["shared_bottom"] and "0.8095" in rows["shared_bottom"]
    assert "0.8137" in rows["star"] and "0.8133" in rows["star"]  # per-domain published
    assert "M2M (best published)" in run.stdout
    assert "0.8095" in rows["shared_bottom+fm"] and "0.8137" in rows["star+fm"]
    assert sum(line.startswith("base ") for line in lines) == 2  # AUC and LogLoss tables
    assert sum(line.startswith("base+fm ") for line in lines) == 2
    assert lines[-4].startswith("plain: each model >= its published AUC: ")
    assert lines[-4].endswith(" (5 compared)")
    assert lines[-3].startswith("fm: each model >= its published AUC: ")
    assert lines[-2].startswith("best mean AUC ")
    runs = json.loads(out.read_text())
    assert list(runs) == MODELS + [f"{name}+fm" for name in MODELS]
    assert not list(tmp_path.glob("*.partial"))
    for row, records in runs.items():
        (record,) = records  # one seed
        assert record["lr"] == ([1e-3, 3e-3] if row.endswith("+fm") else [1e-3, 3e-2])
        assert 0.0 <= record["auc"] <= 1.0 and len(record["domain_auc"]) == 3
        assert record["best_epoch"] in (0, 1) and record["train_rows"] > 0


@pytest.mark.parametrize("device", ["nope", "cuda:0"])
def test_a_device_torch_cannot_use_is_a_one_line_error(tmp_path, device):
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("a CUDA device is available here")
    run = subprocess.run([sys.executable, str(SCRIPT), "--small", "--device", device,
                          "--path", str(tmp_path)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 2
    assert run.stderr.strip().startswith(f"peer_swr: --device '{device}'")
    assert len(run.stderr.splitlines()) == 1


def test_an_unknown_folder_is_a_one_line_error(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--small", "--path",
                          str(tmp_path / "nope")], capture_output=True, text=True, timeout=120,
                         check=False)
    assert run.returncode == 2
    assert run.stderr.strip().startswith("peer_swr: ") and len(run.stderr.splitlines()) == 1
