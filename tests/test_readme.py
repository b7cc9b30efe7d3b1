"""Runs the README's examples, so the documentation cannot drift from the code.

- every ```python block runs, in order, in one namespace, inside a temporary directory;
- every ```console line starting with ``$ graphsel`` runs through the CLI and must exit 0;
  ``$GRAPHSEL_DATA`` in a command needs the public data (skipped or failed like any data test);
- every ```yaml block of ``strategy_options:`` loads as a ``graphsel run`` config, each
  option it names set as written.
"""

from __future__ import annotations

import copy
import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from graphsel.cli import cli
from graphsel.transfer.protocol import strategies
from tests.conftest import data_path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def _blocks(kind: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README.read_text()) if lang == kind]


def _commands() -> list[str]:
    lines = []
    for body in _blocks("console"):
        lines += [line[2:] for line in body.splitlines() if line.startswith("$ graphsel ")]
    return lines


def test_readme_has_examples():
    assert len(_blocks("python")) >= 1
    assert len(_commands()) >= 3


def test_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # The examples register a strategy: into a copy of the registry, dropped afterwards.
    for name in strategies.strategy_names():
        strategies.get_strategy(name)  # register the declared ones first
    monkeypatch.setattr(strategies, "STRATEGIES", copy.deepcopy(strategies.STRATEGIES))
    namespace: dict = {}
    for block in _blocks("python"):
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102


@pytest.mark.parametrize("command", _commands())
def test_console_examples_run(command, tmp_path, monkeypatch):
    if "$GRAPHSEL_DATA" in command:
        root = data_path("movielens-1m").parents[1]
        command = command.replace("$GRAPHSEL_DATA", str(root))
    monkeypatch.chdir(tmp_path)
    _prepare_inputs(command, tmp_path)
    args = shlex.split(command)[1:]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, f"{command}\n{result.output}"


def test_strategy_options_blocks_load(tmp_path):
    import yaml

    from graphsel.transfer.config import load_config

    blocks = [body for body in _blocks("yaml") if body.startswith("strategy_options:")]
    assert len(blocks) >= 2
    for number, body in enumerate(blocks):
        path = tmp_path / f"block{number}.yaml"
        path.write_text(body)
        config = load_config(path)
        for name, values in yaml.safe_load(body)["strategy_options"].items():
            options = config.options_for(name)
            for key, value in values.items():
                if not isinstance(value, dict):  # nested options are checked by their own tests
                    written = getattr(options, key)
                    assert written == (tuple(value) if isinstance(value, list) else value)


def _readme_text() -> str:
    """The README with its line breaks and runs of spaces as single spaces."""
    return " ".join(README.read_text().split())


def test_readme_counts_and_defaults_come_from_the_code():
    from graphsel.data.datasets import list_datasets
    from graphsel.graph.expansion import MAX_HOPS
    from graphsel.select.expansion import GraphExpansion
    from graphsel.select.neighbors import NeighborScorer
    from graphsel.select.stage import STAGES
    from graphsel.transfer.config import load_config
    from graphsel.transfer.protocol.experiment import SYNTHETIC_CONFIG

    text = _readme_text()
    # `make demo` "ends with a table comparing every registered CTR transfer strategy": the
    # demo runs the shipped synthetic config, which must name them all
    assert "ends with a table comparing every registered CTR transfer strategy" in text
    assert list(load_config(SYNTHETIC_CONFIG).strategies) == strategies.strategy_names()
    names = set(re.findall(r"`([a-z0-9_-]+)`", text))
    missing = {"strategy": set(strategies.strategy_names()) - names,
               "dataset": {dataset.name for dataset in list_datasets()} - names,
               # graphsel's own stages (the README's example registers one of its own)
               "stage": {name for name in STAGES.names()
                         if STAGES.get(name).__module__.startswith("graphsel.")} - names}
    assert missing == {"strategy": set(), "dataset": set(), "stage": set()}
    graph, knn = GraphExpansion(), NeighborScorer()
    threshold = NeighborScorer.DEFAULT_RULE.value
    for statement in (
            f"`--hops` takes 0 to {MAX_HOPS}",
            f"share `--hops` hops (default {graph.num_hops})",
            f"rows with `knn_score >= --knn-threshold` (default {threshold}) stay",
            (f"graph: {{num_hops: {graph.num_hops}, max_degree: {graph.max_degree}, "
             f"max_user_rows: {graph.max_user_rows}"),
            f"knn: {{index: {knn.index}, k: {knn.k}, threshold: {threshold}}}"):
        assert statement in text, statement


def _prepare_inputs(command: str, tmp_path: Path) -> None:
    """Commands that read ``demo/`` get the synthetic default prepared there first, and
    commands that read ``configs/`` get a copy of the repository's configs."""
    if "configs/" in command:
        shutil.copytree(README.parent / "configs", tmp_path / "configs")
    if "demo/" in command and not command.startswith("graphsel datasets prepare synthetic"):
        result = CliRunner().invoke(cli, ["datasets", "prepare", "synthetic", "--out", "demo"])
        assert result.exit_code == 0, result.output
