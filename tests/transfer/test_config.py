"""Experiment config: defaults < YAML < flags, typed values, one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphsel.errors import InputError
from graphsel.select.config import SelectionConfig
from graphsel.transfer.config import (
    DatasetConfig,
    ExperimentConfig,
    config_from_dict,
    load_config,
    override,
)
from graphsel.transfer.models.options import (
    AdapterOptions,
    DIITOptions,
    DistillConfig,
    ECATOptions,
    ModelConfig,
)
from graphsel.transfer.protocol.split import ProtocolConfig
from graphsel.transfer.protocol.strategies import strategy_names
from graphsel.transfer.train.options import TrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_an_empty_mapping_gives_the_dataclass_defaults(tmp_path):
    config = load_config(_write(tmp_path, "{}\n"))
    assert config == ExperimentConfig()
    assert config.data == DatasetConfig("synthetic", {})
    assert config.model == ModelConfig() and config.train == TrainConfig()
    assert config.protocol == ProtocolConfig()
    assert list(config.strategies) == strategy_names() and config.seeds == 1


def test_yaml_values_replace_only_what_they_name(tmp_path):
    config = load_config(_write(tmp_path, """
dataset: {name: synthetic, options: {scale: 0.5}}
selection: {graph: {num_hops: 1}, stages: [graph, knn]}
model: {embed_dim: 8, hidden: [32, 16]}
train: {epochs: 2, lr: 0.01}
strategies: [target_only, selected]
periods: 3
mode: once
max_source_rows: 1000
seeds: 2
"""))
    assert config.data == DatasetConfig("synthetic", {"scale": 0.5})
    assert config.selection == SelectionConfig(("graph", "knn"), {"graph": {"num_hops": 1}})
    assert config.model == ModelConfig(embed_dim=8, hidden=(32, 16))
    assert config.train == TrainConfig(epochs=2, lr=0.01)
    assert config.strategies == ("target_only", "selected")
    assert config.protocol == ProtocolConfig(periods=3, mode="once", max_source_rows=1000)
    assert config.seeds == 2


def test_flags_beat_the_file(tmp_path):
    config = load_config(_write(tmp_path, "seeds: 2\nperiods: 2\ntrain: {epochs: 4, lr: 0.01}\n"))
    flagged = override(config, seeds=3, periods=None, epochs=1, strategies=["merge_all"])
    assert flagged.seeds == 3 and flagged.protocol.periods == 2
    assert flagged.train == TrainConfig(epochs=1, lr=0.01)
    assert flagged.strategies == ("merge_all",)
    assert override(config) == config


def test_source_and_target_paths(tmp_path):
    config = config_from_dict({"source": "a.parquet", "target": "b.parquet"})
    assert config.data == ("a.parquet", "b.parquet")
    with pytest.raises(InputError, match="either 'dataset' or 'source' and 'target'"):
        config_from_dict({"source": "a", "target": "b", "dataset": {"name": "synthetic"}})
    with pytest.raises(InputError, match="give both paths"):
        config_from_dict({"source": "a"})


@pytest.mark.parametrize("text, message", [
    ("epoch: 3\n", r"exp\.yaml: unknown key 'epoch' \(valid: dataset, .*periods, mode"),
    ("model: {embed_size: 3}\n", r"exp\.yaml: unknown key 'model\.embed_size' \(valid: embed_dim"),
    ("train: {epochs: two}\n", r"exp\.yaml: key 'train\.epochs' must be an integer, got 'two'"),
    ("train: {epochs: 0}\n", r"exp\.yaml: train: TrainConfig\.epochs must be >= 1"),
    ("model: {hidden: 64}\n", r"key 'model\.hidden' must be a list, got 64"),
    ("strategies: [target_only, best]\n", r"exp\.yaml: Could not resolve strategy 'best'"),
    ("mode: sometimes\n", r"exp\.yaml: protocol: Could not resolve mode 'sometimes'"),
    ("auto_margin: 6\n", r"exp\.yaml: protocol: auto_margin must be in \[0, 5\] \(standard "
                         r"errors\), got 6"),
    ("strategy_options: {ensemble: {members: [merge_all]}}\n",
     r"exp\.yaml: strategy_options\.ensemble: members must be a list of at least two distinct"),
    ("strategy_options: {ensemble: {members: [merge_all, auto]}}\n",
     r"exp\.yaml: strategy_options\.ensemble\.members: 'auto' combines other strategies"),
    ("strategy_options: {ensemble: {members: [merge_all, best]}}\n",
     r"exp\.yaml: Could not resolve strategy 'best'"),
    ("strategy_options: {budget_ensemble: {members: [budget_finetune, ensemble]}}\n",
     r"exp\.yaml: strategy_options\.budget_ensemble\.members: 'ensemble' combines other"),
    ("selection: {hops: 2}\n", r"exp\.yaml: selection: unknown key 'hops' \(valid: stages"),
    ("selection: {knn: {kk: 2}}\n", r"exp\.yaml: selection\.knn: unknown key 'kk' \(valid: index"),
    ("selection: {stages: [graph, magic]}\n", r"exp\.yaml: .*stage 'magic'"),
    ("protocol: {periods: 2}\n", r"unknown key 'protocol' \(its keys .* sit at the top level"),
    ("- a\n- b\n", r"exp\.yaml: expected a mapping of keys at the top level, got list"),
    ("model: [\n", r"exp\.yaml: not valid YAML at line 2, column 1"),
    ("", r"exp\.yaml: the config is empty; write \{\} to mean every default"),
    ("# only a comment\n", r"exp\.yaml: the config is empty"),
])
def test_bad_config_is_one_line_naming_file_and_key(tmp_path, text, message):
    with pytest.raises(InputError, match=message) as info:
        load_config(_write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.yaml: cannot read the config"):
        load_config(tmp_path / "nope.yaml")


def test_environment_variables_expand_and_unset_ones_are_named(tmp_path, monkeypatch):
    text = "dataset:\n  name: movielens-1m\n  options:\n    path: ${GRAPHSEL_DATA}/ml-1m\n"
    monkeypatch.setenv("GRAPHSEL_DATA", "/data")
    assert load_config(_write(tmp_path, text)).dataset.options == {"path": "/data/ml-1m"}
    monkeypatch.delenv("GRAPHSEL_DATA")
    with pytest.raises(InputError, match=r"exp\.yaml: key 'dataset\.options\.path' uses "
                                         r"\$\{GRAPHSEL_DATA\}, but the environment variable "
                                         r"GRAPHSEL_DATA is not set"):
        load_config(_write(tmp_path, text))


@pytest.mark.parametrize("name", ["synthetic", "ml1m-documentary", "ml1m-animation", "taobao"])
def test_shipped_configs_load(name, monkeypatch):
    monkeypatch.setenv("GRAPHSEL_DATA", "/shared/data")
    config = load_config(CONFIGS / f"{name}.yaml")
    assert set(config.strategies) == set(strategy_names())
    if name != "synthetic":
        assert config.dataset.options["path"].startswith("/shared/data/")


def test_synthetic_yaml_is_the_demo_default_and_its_only_copy():
    from graphsel.transfer.protocol.experiment import (
        SYNTHETIC_CONFIG,
        synthetic_default,
    )

    # configs/synthetic.yaml links to the file shipped in the package: one copy of it
    assert (CONFIGS / "synthetic.yaml").resolve() == SYNTHETIC_CONFIG.resolve()
    assert load_config(CONFIGS / "synthetic.yaml") == synthetic_default()
    assert synthetic_default(seed=3, scale=0.5).dataset == DatasetConfig(
        "synthetic", {"seed": 3, "scale": 0.5})
    assert synthetic_default(scale=0.5).model == synthetic_default().model


def test_strategy_options_replace_only_what_they_name(tmp_path):
    config = load_config(_write(tmp_path, """
strategy_options:
  ctnet_linear: {adapter_init_std: 0.01}
  ecat: {distill_weight: 0.5, distill: {beta: 2.0}, adapters: {adapter: linear}}
  diit: {num_sources: 2, loss: {adversarial_weight: 0.0}}
"""))
    assert config.options_for("ctnet_linear") == AdapterOptions("linear", 0.01)
    assert config.options_for("ctnet") == AdapterOptions("glu")
    assert config.options_for("ecat") == ECATOptions(AdapterOptions("linear"), 0.5,
                                                     DistillConfig(beta=2.0))
    diit = config.options_for("diit")
    assert (diit.num_sources, diit.loss.adversarial_weight, diit.loss.gate_weight) == (2, 0.0,
                                                                                       1.0)
    assert config.options_for("merge_all") is None
    assert ExperimentConfig().options_for("diit") == DIITOptions() and DIITOptions().num_sources == 3


@pytest.mark.parametrize("text, message", [
    ("strategy_options: {best: {}}\n",
     r"exp\.yaml: key 'strategy_options\.best': Could not resolve strategy 'best'"),
    ("strategy_options: {merge_all: {x: 1}}\n",
     r"key 'strategy_options\.merge_all': strategy 'merge_all' takes no options"),
    ("strategy_options: {diit: {sources: 2}}\n",
     r"unknown key 'strategy_options\.diit\.sources' \(valid: num_sources, model, loss\)"),
    ("strategy_options: {diit: {num_sources: 0}}\n",
     r"exp\.yaml: strategy_options\.diit: num_sources must be >= 1, got 0"),
    ("strategy_options: {ctnet: {adapter: gru}}\n", r"Could not resolve adapter 'gru'"),
    ("strategy_options: {ecat: {distill: {beta: high}}}\n",
     r"key 'strategy_options\.ecat\.distill\.beta' must be a number, got 'high'"),
    ("strategy_options: [ecat]\n", r"key 'strategy_options' must be a mapping"),
])
def test_bad_strategy_options_are_one_line_naming_the_key(tmp_path, text, message):
    with pytest.raises(InputError, match=message) as info:
        load_config(_write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_options_of_the_wrong_type_in_python():
    with pytest.raises(InputError, match="options of strategy 'diit' must be a DIITOptions"):
        ExperimentConfig(strategy_options={"diit": AdapterOptions()})


def test_a_config_loads_without_torch():
    import subprocess
    import sys

    code = ("import sys; from graphsel.transfer.config import load_config; "
            f"config = load_config({str(CONFIGS / 'synthetic.yaml')!r}); "
            "assert config.options_for('diit').num_sources == 3; "
            "print(sorted({'torch', 'graphsel.transfer.models.base'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.strip() == "[]"
