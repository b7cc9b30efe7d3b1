"""The thread policy (graphsel/_runtime.py): the variables it sets, and what the OpenMP
runtimes of torch, FAISS and scikit-learn report they got (``OMP_DISPLAY_ENV=VERBOSE``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from graphsel._runtime import (
    ENV,
    MARK,
    apply_policy,
    policy_environ,
    quota_cpus,
    training_threads,
    usable_cpus,
)
from graphsel.errors import InputError

# the suite itself runs with OMP_WAIT_POLICY=PASSIVE: each child starts without these
CLEARED = (ENV, MARK, "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
           "OPENBLAS_NUM_THREADS")
# libgomp's spin count says which wait policy it read: PASSIVE 0, ACTIVE 3e10, unset 3e5
PASSIVE, ACTIVE, UNSET = "0", "30000000000", "300000"


def _openmp_runtimes(code: list[str], **env: str) -> tuple[list[dict[str, str]], str]:
    """Runs ``python CODE`` with ``env``: the settings each libgomp printed, and stdout."""
    base = {name: value for name, value in os.environ.items() if name not in CLEARED}
    run = subprocess.run([sys.executable, *code], capture_output=True, text=True, timeout=300,
                         check=False, env={**base, "OMP_DISPLAY_ENV": "VERBOSE", **env})
    assert run.returncode == 0, run.stderr
    blocks = re.findall(r"OPENMP DISPLAY ENVIRONMENT BEGIN\n(.*?)OPENMP DISPLAY ENVIRONMENT END",
                        run.stderr, flags=re.S)
    assert blocks, run.stderr
    return ([dict(re.findall(r"^\s*(\w+) = '([^']*)'", block, flags=re.M)) for block in blocks],
            run.stdout)


def test_policy_fills_only_what_the_user_left_unset():
    assert policy_environ({}, cpus=3) == {
        "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3",
        "OPENBLAS_NUM_THREADS": "3"}
    assert policy_environ({"OMP_NUM_THREADS": "4", "GRAPHSEL_THREADS": "2",
                           "OMP_WAIT_POLICY": "ACTIVE"}, cpus=3) == {
        "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    assert policy_environ({"GRAPHSEL_THREADS": " Off "}, cpus=3) == {}
    assert policy_environ({"GRAPHSEL_THREADS": "auto"}, cpus=1)["OMP_NUM_THREADS"] == "1"


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_setting_is_one_line(value):
    with pytest.raises(InputError, match=f"^GRAPHSEL_THREADS='{re.escape(value)}' is not "
                                         "'auto', 'off' or a positive integer$"):
        policy_environ({"GRAPHSEL_THREADS": value}, cpus=2)


def test_container_quota_caps_the_cpus(tmp_path):
    assert [quota_cpus(text) for text in ("200000 100000", "50000 100000", "max 100000",
                                          "1 0", "garbage")] == [2, 1, None, None, None]
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("50000 100000\n")
    assert usable_cpus(cpu_max) == 1
    cpu_max.write_text("max 100000\n")
    assert usable_cpus(cpu_max) == len(os.sched_getaffinity(0))
    assert usable_cpus(tmp_path / "missing") == len(os.sched_getaffinity(0))


def test_import_graphsel_before_torch_makes_idle_threads_sleep():
    (runtime,), _ = _openmp_runtimes(["-c", "import graphsel, torch"])
    assert runtime["GOMP_SPINCOUNT"] == PASSIVE
    assert runtime["OMP_NUM_THREADS"] == str(usable_cpus())


def test_user_settings_win():
    runtimes, _ = _openmp_runtimes(["-c", "import graphsel, faiss"], OMP_WAIT_POLICY="ACTIVE",
                                OMP_NUM_THREADS="1")
    assert [(r["GOMP_SPINCOUNT"], r["OMP_NUM_THREADS"]) for r in runtimes] == [(ACTIVE, "1")]
    (off,), _ = _openmp_runtimes(["-c", "import graphsel, faiss"], GRAPHSEL_THREADS="off")
    assert off["GOMP_SPINCOUNT"] == UNSET


def test_command_line_applies_the_policy(tmp_path):
    # the demo's selection loads the OpenMP runtime of scikit-learn and FAISS (one library)
    runtimes, _ = _openmp_runtimes(["-m", "graphsel", "demo", "--scale", "0.02",
                                    "--no-transfer", "--out", str(tmp_path / "demo")],
                                   GRAPHSEL_THREADS="1")
    assert {(r["GOMP_SPINCOUNT"], r["OMP_NUM_THREADS"]) for r in runtimes} == {(PASSIVE, "1")}


def test_set_threads_after_torch_sets_counts_not_the_wait_policy():
    code = ("import torch, graphsel, threadpoolctl; print(graphsel.set_threads(1)); "
            "print(torch.get_num_threads(), sorted({p['num_threads'] for p in "
            "threadpoolctl.threadpool_info()}))")
    (runtime,), stdout = _openmp_runtimes(["-c", code])
    assert stdout.splitlines() == ["1", "1 [1]"]
    # torch's libgomp loaded before graphsel could set the policy: it keeps spinning
    assert runtime["GOMP_SPINCOUNT"] == UNSET


def test_set_threads_rejects_a_bad_count():
    from graphsel import set_threads

    with pytest.raises(InputError, match="^threads must be an integer >= 1, got 0$"):
        set_threads(0)


def _imported(cpus: int = 2, **user: str) -> dict[str, str]:
    """The environment after ``import graphsel`` (on ``cpus`` CPUs) started with ``user``."""
    environ = dict(user)
    apply_policy(environ, cpus)
    return environ


def test_apply_policy_marks_what_it_set():
    environ = _imported(cpus=2, OMP_NUM_THREADS="3")
    assert environ[MARK] == "OMP_WAIT_POLICY=PASSIVE MKL_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2"
    # a child inheriting the variables keeps the mark of those still holding their values
    child = _imported(cpus=2, **{**environ, "MKL_NUM_THREADS": "5"})
    assert child[MARK] == "OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=2"
    assert _imported(cpus=2, **{ENV: "off"}) == {ENV: "off"}


@pytest.mark.parametrize(("requested", "user", "torch_threads", "expected"), [
    (None, {}, 2, 1),                                     # auto: one training thread
    (None, {ENV: "auto"}, None, 1),                       # torch not loaded
    (None, {ENV: "3"}, 3, 3),                             # N means N
    (None, {ENV: "off"}, 2, None),                        # off: torch's own count
    (None, {"OMP_NUM_THREADS": "2"}, 2, None),            # the user's OMP_NUM_THREADS
    (None, {"OMP_NUM_THREADS": "4", ENV: "3"}, 4, None),  # ... wins over GRAPHSEL_THREADS
    (None, {}, 5, None),                                  # the user's torch.set_num_threads
    (None, {ENV: "3"}, 1, None),
    (None, {ENV: "two"}, 2, 1),                           # bad value: auto (import warned)
    (4, {}, 2, 4),                                        # a config's num_threads wins
    (4, {ENV: "off"}, 2, 4),
    (4, {"OMP_NUM_THREADS": "1"}, 1, 4),
])
def test_training_threads_per_policy(requested, user, torch_threads, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the bad value's import warning
        environ = _imported(**user)
    assert training_threads(requested, environ=environ, torch_threads=torch_threads) == expected


def test_training_threads_in_a_child_of_a_graphsel_process():
    parent = _imported(cpus=2)
    # the child inherits the policy's OMP_NUM_THREADS=2 and its mark: still the policy's
    child = _imported(cpus=2, **parent)
    assert training_threads(environ=child, torch_threads=2) == 1
    # without the mark, the inherited variable reads as the user's
    del child[MARK]
    assert training_threads(environ=child, torch_threads=2) is None


def test_set_threads_is_the_callers_count():
    # torch reads the policy's OMP_NUM_THREADS: training takes one thread; after set_threads
    # with that same count, the count is the caller's and training keeps it
    code = ("import graphsel, torch; from graphsel._runtime import training_threads; "
            "print(training_threads()); graphsel.set_threads(torch.get_num_threads()); "
            "print(training_threads())")
    _, stdout = _openmp_runtimes(["-c", code])
    assert stdout.splitlines() == ["1", "None"]


class _ThreadCounter(nn.Module):
    """A logistic regression on the numeric features that records torch's thread count."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)
        self.threads: list[int] = []

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        self.threads.append(torch.get_num_threads())
        return self.linear(num).squeeze(1)


@pytest.mark.parametrize(("user", "expected"), [({}, 1), ({ENV: "3"}, 3)])
def test_fit_and_predict_run_at_the_policys_count_then_restore(monkeypatch, user, expected):
    from graphsel.transfer.data import CTRDataset
    from graphsel.transfer.train.options import TrainConfig
    from graphsel.transfer.train.trainer import Trainer, predict

    monkeypatch.setattr(os, "environ", _imported(cpus=2, **user))
    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))  # as torch read it on loading
    try:
        data = CTRDataset(np.zeros((8, 1), dtype=np.int64), np.arange(8.0)[:, None],
                          np.arange(8) % 2)
        model = _ThreadCounter()
        Trainer(TrainConfig(epochs=2, batch_size=4, progress=False)).fit(model, data, data)
        assert torch.get_num_threads() == int(os.environ["OMP_NUM_THREADS"])
        predict(model, data)
        assert torch.get_num_threads() == int(os.environ["OMP_NUM_THREADS"])
        # 2 epochs x (2 training batches + 1 validation batch), then predict's batch
        assert model.threads == [expected] * 7
    finally:
        torch.set_num_threads(before)
