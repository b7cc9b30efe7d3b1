"""Strategies: the registry, and each strategy's exact source rows, weights and schedule."""

from __future__ import annotations

import numpy as np
import pytest

from graphsel.errors import InputError
from graphsel.select.pipeline import Selection
from graphsel.transfer.protocol.strategies import (
    SourcePlan,
    StrategyContext,
    default_options,
    get_strategy,
    register_strategy,
    strategy_names,
)

# Candidate source rows 10, 12, ..., 28; the selection keeps rows 10, 14 and 26.
CANDIDATES = np.arange(10, 30, 2)
MASK = np.isin(CANDIDATES, [10, 14, 26])
WEIGHT = np.where(MASK, np.linspace(0.5, 2.3, len(CANDIDATES)), 0.0).astype(np.float32)


def _selection() -> Selection:
    n = len(CANDIDATES)
    nan = np.full(n, np.nan, dtype=np.float32)
    return Selection(MASK, WEIGHT, {"hop": np.full(n, -1, dtype=np.int32), "p_target": nan,
                                    "knn_score": nan})


def _plan(name: str, seed: int = 0, candidates: np.ndarray = CANDIDATES,
          selection: Selection | None = None) -> SourcePlan:
    context = StrategyContext(candidates, selection or _selection(), seed)
    return get_strategy(name).plan(context)


def test_registry_lists_the_builtins_then_the_seed_papers_then_the_recipes_in_order():
    assert strategy_names() == ["target_only", "merge_all", "random_same_size", "selected",
                                "selected_weighted", "pretrain_finetune", "ctnet",
                                "ctnet_linear", "ctnet_cold", "ecat", "ecat_cold", "diit",
                                "diit_cold", "ecdctr", "merge_finetune",
                                "merge_finetune_selected", "merge_finetune_random",
                                "budget_finetune", "budget_ctnet", "weighted_all",
                                "subdomain_gap", "shared_bottom", "mmoe", "ple", "star",
                                "pepnet", "star_finetune", "budget_star_finetune",
                                "merge_all_ensemble", "ensemble", "budget_ensemble", "auto"]


def test_listing_and_checking_strategies_imports_no_torch_until_one_is_used():
    import subprocess
    import sys

    code = ("import sys; from graphsel.transfer.protocol import strategies as s; "
            "names = s.strategy_names(); options = s.default_options('ecat'); "
            "before = 'torch' in sys.modules; ctnet = s.get_strategy('ctnet'); "
            "print(len(names), before, 'torch' in sys.modules, ctnet.learner.__module__, "
            "s.get_strategy('ctnet_linear').options.adapter)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.split() == ["32", "False", "True", "graphsel.transfer.models.ctnet", "linear"]


def test_default_options_are_declared_with_the_names():
    from graphsel.transfer.models.options import (
        AdapterOptions,
        DIITOptions,
        ECATOptions,
    )

    assert default_options("ctnet") == AdapterOptions("glu")
    assert default_options("ctnet_linear") == AdapterOptions("linear")
    assert default_options("ctnet_cold") == AdapterOptions("glu")
    assert default_options("ecat") == default_options("ecat_cold") == ECATOptions()
    assert default_options("diit") == default_options("diit_cold") == DIITOptions(num_sources=3)
    assert default_options("ecdctr") is None and default_options("selected") is None
    with pytest.raises(InputError, match="Could not resolve strategy 'nope'"):
        default_options("nope")
    assert get_strategy("diit").options is default_options("diit")


def test_unknown_strategy_lists_the_names():
    with pytest.raises(InputError, match=r"Could not resolve strategy 'nope' among \[.*"
                                         r"'merge_all'.*'target_only'"):
        get_strategy("nope")


def test_registering_a_name_twice_is_a_bug():
    with pytest.raises(ValueError, match="already registered"):
        register_strategy("merge_all")(lambda context: None)


def test_target_only_has_no_source_row():
    plan = _plan("target_only")
    assert plan.rows.tolist() == [] and plan.weight.tolist() == [] and plan.schedule == "joint"


def test_merge_all_takes_every_candidate_with_weight_one():
    plan = _plan("merge_all")
    assert plan.rows.tolist() == CANDIDATES.tolist()
    assert plan.weight.tolist() == [1.0] * len(CANDIDATES)
    assert plan.schedule == "joint"


def test_selected_takes_the_selection_with_weight_one():
    plan = _plan("selected")
    assert plan.rows.tolist() == [10, 14, 26]
    assert plan.weight.tolist() == [1.0, 1.0, 1.0]


def test_selected_weighted_keeps_the_selection_weights():
    plan = _plan("selected_weighted")
    assert plan.rows.tolist() == [10, 14, 26]
    np.testing.assert_array_equal(plan.weight, WEIGHT[MASK])
    assert plan.weight.tolist() != [1.0, 1.0, 1.0]


def test_ecat_holds_every_candidate_and_focuses_on_the_selection():
    plan = _plan("ecat")  # the teacher trains on every row, the student on the selected ones
    assert plan.rows.tolist() == CANDIDATES.tolist() and plan.schedule == "joint"
    assert plan.weight.tolist() == [1.0] * len(CANDIDATES)
    assert plan.focus.tolist() == MASK.tolist()
    cold = _plan("ecat_cold")  # the ablation: the selected rows alone
    assert cold.rows.tolist() == [10, 14, 26] and cold.focus is None
    assert len(_plan("ctnet")) == len(_plan("diit_cold")) == len(CANDIDATES)


def test_pretrain_finetune_pretrains_on_every_candidate():
    plan = _plan("pretrain_finetune")
    assert plan.rows.tolist() == CANDIDATES.tolist() and plan.schedule == "pretrain"
    assert plan.weight.tolist() == [1.0] * len(CANDIDATES)


def test_random_same_size_is_a_seeded_subset_as_large_as_the_selection():
    candidates = np.arange(1000, 3000)
    mask = np.zeros(len(candidates), dtype=bool)
    mask[:150] = True
    nan = np.full(len(candidates), np.nan, dtype=np.float32)
    selection = Selection(mask, mask.astype(np.float32), {
        "hop": np.zeros(len(candidates), np.int32), "p_target": nan, "knn_score": nan})
    first = _plan("random_same_size", 0, candidates, selection)
    assert len(first) == 150 and len(np.unique(first.rows)) == 150
    assert np.isin(first.rows, candidates).all()
    assert (np.diff(first.rows) > 0).all()
    assert first.weight.tolist() == [1.0] * 150
    assert first.rows.tolist() == _plan("random_same_size", 0, candidates, selection).rows.tolist()
    assert first.rows.tolist() != _plan("random_same_size", 1, candidates, selection).rows.tolist()
    # Not the selection itself: the first 150 candidates are what was selected.
    assert first.rows.tolist() != candidates[:150].tolist()


def test_a_strategy_that_needs_a_selection_says_so():
    context = StrategyContext(CANDIDATES, None, 0)
    with pytest.raises(InputError, match="'selected' needs a selection"):
        get_strategy("selected").plan(context)
    assert len(get_strategy("merge_all").plan(context)) == len(CANDIDATES)


def test_plan_window_restricts_rows_and_weights_together():
    plan = _plan("selected_weighted").within(np.array([True, False, True]))
    assert plan.rows.tolist() == [10, 26]
    np.testing.assert_array_equal(plan.weight, WEIGHT[MASK][[0, 2]])


def test_docstring_examples():
    import doctest

    from graphsel.transfer.protocol import strategies

    assert doctest.testmod(strategies).failed == 0
