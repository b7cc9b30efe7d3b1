"""SelectionConfig: YAML shape, precedence, one error per bad key, and the built selector."""

from __future__ import annotations

import subprocess
import sys

import pytest

from graphsel.errors import InputError
from graphsel.select.config import SelectionConfig
from graphsel.select.domain import DomainClassifier
from graphsel.select.expansion import GraphExpansion
from graphsel.select.neighbors import NeighborScorer


def test_defaults_are_the_stage_signatures():
    selector = SelectionConfig().build()
    assert [type(stage) for stage in selector.stages] == [GraphExpansion, DomainClassifier,
                                                          NeighborScorer]
    for stage in selector.stages:
        assert stage.get_params() == type(stage)().get_params()
    assert selector.progress is False and SelectionConfig().build(progress=True).progress


def test_from_dict_sets_each_stage_its_own_parameters_and_the_seed():
    config = SelectionConfig.from_dict({
        "stages": ["graph", "knn"], "seed": 7,
        "graph": {"num_hops": 1, "max_degree": None},
        "knn": {"k": 3, "random_state": 2}})
    graph, knn = config.build().stages
    assert (graph.num_hops, graph.max_degree, graph.random_state) == (1, None, 7)
    assert (knn.k, knn.random_state, knn.index) == (3, 2, "auto")  # its own seed wins


def test_flags_override_yaml_key_by_key():
    config = SelectionConfig.from_dict({"graph": {"num_hops": 1, "mode": "any"}, "seed": 3})
    merged = config.merged(params={"graph": {"num_hops": 3}}, seed=4)
    graph = merged.stage("graph")
    assert (graph.num_hops, graph.mode, graph.random_state) == (3, "any", 4)
    assert config.stage("graph").num_hops == 1  # frozen: the original is unchanged
    assert merged.merged(stages=["graph", "da"]).stages == ("graph", "da")


def test_subset_keeps_the_named_stages_and_their_parameters():
    config = SelectionConfig(params={"graph": {"num_hops": 1}, "knn": {"k": 3}}, seed=2)
    graph_only = config.subset(["graph"])
    assert graph_only.stages == ("graph",) and dict(graph_only.params) == {"graph": {
        "num_hops": 1}}
    assert graph_only.seed == 2


@pytest.mark.parametrize("raw, message", [
    ({"stagez": []}, "run.yaml: selection: unknown key 'stagez' (valid: stages, seed, graph, da, "
                     "knn"),
    ({"stages": "graph"}, "run.yaml: selection.stages must be a list of stage names"),
    ({"stages": []}, "run.yaml: selection.stages is empty"),
    ({"stages": ["graph", "magic"]}, "run.yaml: selection.stages: Could not resolve stage 'magic' among"),
    ({"graph": {"hops": 2}}, ("run.yaml: selection.graph: unknown key 'hops' (valid: num_hops, "
                              "max_degree, fanout, max_user_rows, mode, edges, relations, as_of, "
                              "random_state, keep_graph)")),
    ({"graph": 2}, "run.yaml: selection.graph must be a mapping"),
    ({"stages": ["graph"], "da": {"budget": 5}},
     ("run.yaml: selection.da sets parameters of the 'da' stage, which is not among the stages "
      "['graph']")),
    ({"da": {"cv": 1}}, "run.yaml: selection.da: cv must be an integer >= 2, got 1"),
    ({"knn": {"index": "hnsw32"}}, "run.yaml: selection.knn: Could not resolve index 'hnsw32'"),
    ({"seed": -1}, "run.yaml: selection.seed must be an integer >= 0, got -1"),
    ([1], "run.yaml: selection must be a mapping, got list"),
])
def test_bad_keys_and_values_name_the_file_and_key(raw, message):
    with pytest.raises(InputError) as error:
        SelectionConfig.from_dict(raw, where="run.yaml: selection")
    assert str(error.value).startswith(message), str(error.value)


def test_from_yaml(tmp_path):
    path = tmp_path / "select.yaml"
    path.write_text("stages: [graph, da]\nseed: 1\ngraph: {max_degree: auto}\n"
                    "da: {model: logistic, weight_clip: [0.1, 5]}\n")
    graph, da = SelectionConfig.from_yaml(path).build().stages
    assert (graph.max_degree, da.model, da.weight_clip, da.random_state) == (
        "auto", "logistic", [0.1, 5], 1)
    path.write_text("stages: [graph\n")
    with pytest.raises(InputError, match="select.yaml: not valid YAML"):
        SelectionConfig.from_yaml(path)
    with pytest.raises(InputError, match="cannot read the config"):
        SelectionConfig.from_yaml(tmp_path / "missing.yaml")


def test_loading_a_config_imports_no_torch():
    code = ("import sys; from graphsel.select.config import SelectionConfig; "
            "SelectionConfig.from_dict({'da': {'cv': 3}}).build(); "
            "assert 'torch' not in sys.modules and 'graphsel.transfer' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
