"""Multi-domain models: domain routing, STAR's star weights and partitioned normalisation,
PLE's expert isolation, MMoE's and PEPNet's gates, on hand-built batches."""

from __future__ import annotations

import pytest
import torch

from graphsel.errors import InputError
from graphsel.transfer.data import CTRDataset
from graphsel.transfer.models.base import get_model, model_names
from graphsel.transfer.models.multidomain import (
    PLE,
    STAR,
    MMoE,
    PartitionedNorm,
    PEPNet,
    StarLinear,
    build_ple,
    route,
)
from graphsel.transfer.models.multidomain_options import (
    MMoEOptions,
    PEPNetOptions,
    PLEOptions,
    STAROptions,
    TowerOptions,
)
from graphsel.transfer.models.options import ModelConfig
from graphsel.transfer.train.trainer import TrainConfig, fit

NAMES = ("shared_bottom", "mmoe", "ple", "star", "pepnet")
VOCAB = (4, 5, 3)  # the domain field (column 0): OOV + 3 domains
CONFIG = ModelConfig(embed_dim=3, hidden=(6, 4))
# Row i's domain is CAT[i, 0]: two rows of each known domain and one of the OOV slot.
CAT = torch.tensor([[1, 1, 2], [2, 3, 1], [3, 4, 0], [1, 2, 1], [2, 0, 2], [3, 1, 1],
                    [0, 2, 2]])
NUM = torch.linspace(-1.0, 1.0, 7).unsqueeze(1)


def build(name: str, seed: int = 0, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    return get_model(name)(list(VOCAB), 1, CONFIG, domain_field=0, num_domains=3, **kwargs)


def scrambled(name: str) -> torch.nn.Module:
    """A model whose every parameter is random (STAR's W_p = 1 and b_p = 0 at the start would
    make every domain alike), in eval mode."""
    model = build(name)
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)
    return model.eval()


def test_route_puts_each_slots_output_back_in_row_order():
    x = torch.arange(5.0)
    out = route(torch.tensor([2, 0, 2, 1, 0]), 3, lambda slot, rows: x[rows] + 100 * slot)
    assert out.tolist() == [200.0, 1.0, 202.0, 103.0, 4.0]
    assert route(torch.zeros(0, dtype=torch.long), 3, lambda slot, rows: x[rows]).shape == (0,)


def test_every_model_is_registered_with_its_options():
    assert set(NAMES) <= set(model_names())
    for name, options in [("shared_bottom", TowerOptions(tower_hidden=())),
                          ("mmoe", MMoEOptions(num_experts=2)),
                          ("ple", PLEOptions(num_shared_experts=2, num_specific_experts=2)),
                          ("star", STAROptions(aux_hidden=(2,))),
                          ("pepnet", PEPNetOptions(gate_hidden=2))]:
        assert build(name, options=options)(CAT, NUM).shape == (7,)


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_and_domain_routing(name):
    """Moving one row to another domain changes that row's logit and no other."""
    model = scrambled(name)
    with torch.no_grad():
        before = model(CAT, NUM)
        moved = CAT.clone()
        moved[1, 0] = 3  # row 1: domain 2 -> 3
        after = model(moved, NUM)
    assert before.shape == (7,) and before.dtype == torch.float32
    changed = (before - after).abs() > 1e-6
    assert changed.tolist() == [False, True, False, False, False, False, False]


@pytest.mark.parametrize("name", NAMES)
def test_a_row_does_not_depend_on_its_batch_in_eval(name):
    model = scrambled(name)
    with torch.no_grad():
        whole = model(CAT, NUM)
        alone = torch.cat([model(CAT[i:i + 1], NUM[i:i + 1]) for i in range(7)])
    torch.testing.assert_close(alone, whole)


def test_domain_checks():
    with pytest.raises(InputError, match=r"domain_field must be in \[0, 3\), got 3"):
        get_model("star")(list(VOCAB), 1, CONFIG, domain_field=3, num_domains=3)
    with pytest.raises(InputError, match=r"the domain field \(column 1\) has 4 values, more "
                                         r"than num_domains=3"):
        get_model("mmoe")(list(VOCAB), 1, CONFIG, domain_field=1, num_domains=3)
    model = build("shared_bottom")
    with pytest.raises(InputError, match=r"indices outside \[0, 3\]: num_domains=3"):
        model(torch.tensor([[4, 1, 1]]), NUM[:1])


# -- STAR ------------------------------------------------------------------------------------


def test_star_effective_weight_is_shared_times_domain_weight():
    layer = StarLinear(3, 2, num_slots=3)
    torch.manual_seed(0)
    with torch.no_grad():
        layer.domain_weight.normal_()
        layer.domain_bias.normal_()
    for slot in range(3):
        assert torch.equal(layer.effective_weight(slot),
                           layer.shared_weight * layer.domain_weight[slot])
        assert torch.equal(layer.effective_bias(slot),
                           layer.shared_bias + layer.domain_bias[slot])
    x = torch.randn(4, 3)
    domain = torch.tensor([2, 0, 2, 1])
    expected = torch.stack([x[i] @ (layer.shared_weight * layer.domain_weight[d]).T
                            + layer.shared_bias + layer.domain_bias[d]
                            for i, d in enumerate(domain.tolist())])
    torch.testing.assert_close(layer(x, domain), expected)


def test_star_starts_with_every_domain_equal_to_the_shared_layer():
    layer = StarLinear(3, 2, num_slots=3)
    assert all(torch.equal(layer.effective_weight(slot), layer.shared_weight)
               for slot in range(3))


def test_star_gradient_of_a_domain_weight_comes_from_its_rows_only():
    layer = StarLinear(3, 2, num_slots=3)
    layer(torch.randn(4, 3), torch.tensor([1, 1, 2, 2])).sum().backward()
    grad = layer.domain_weight.grad
    assert grad is not None
    assert grad[0].abs().sum() == 0 and grad[1].abs().sum() > 0 and grad[2].abs().sum() > 0


def test_partitioned_norm_keeps_per_domain_statistics_apart():
    norm = PartitionedNorm(2, num_slots=3, momentum=1.0)  # running stats = the last batch's
    x = torch.tensor([[1.0, 10.0], [3.0, 30.0], [100.0, -5.0], [300.0, 5.0]])
    domain = torch.tensor([1, 1, 2, 2])
    out = norm(x, domain)
    # Each domain normalised by its own mean and variance: +-1 in both columns.
    torch.testing.assert_close(out, torch.tensor([[-1.0, -1.0], [1.0, 1.0], [-1.0, -1.0],
                                                  [1.0, 1.0]]), atol=1e-4, rtol=0)
    assert norm.running_mean.tolist() == [[0.0, 0.0], [2.0, 20.0], [200.0, 0.0]]
    # unbiased variances, as BatchNorm keeps them: (1, 100) * 2 and (10000, 25) * 2
    assert norm.running_var.tolist() == [[1.0, 1.0], [2.0, 200.0], [20000.0, 50.0]]
    norm.eval()
    with torch.no_grad():
        norm.domain_weight[2] = 2.0
        norm.domain_bias[2] = 1.0
    # (gamma * gamma_p) * (x - mean_p) / sqrt(var_p + eps) + (beta + beta_p), per domain
    out = norm(torch.tensor([[4.0, 20.0], [200.0, 10.0]]), torch.tensor([1, 2]))
    expected = torch.tensor([[2.0 / 2.0**0.5, 0.0],
                             [1.0, 2 * 10.0 / 50.0**0.5 + 1.0]])
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


def test_partitioned_norm_of_a_single_row_domain_uses_its_running_statistics():
    norm = PartitionedNorm(1, num_slots=2)
    out = norm(torch.tensor([[5.0], [1.0], [3.0]]), torch.tensor([0, 1, 1]))
    torch.testing.assert_close(out, torch.tensor([[5.0], [-1.0], [1.0]]), atol=1e-4, rtol=0)
    assert norm.running_mean[0].item() == 0.0


def test_star_logit_is_star_network_plus_auxiliary_network_without_relu():
    model = scrambled("star")
    assert isinstance(model, STAR) and model.norm is not None
    with torch.no_grad():
        embedded = model.inputs.embedding(CAT)
        domain = CAT[:, 0]
        x = model.norm(torch.cat([embedded.flatten(1), NUM], dim=1), domain)
        for layer in model.layers[:-1]:
            x = torch.relu(layer(x, domain))
        star = model.layers[-1](x, domain).squeeze(1)
        expected = star + model.aux(embedded[:, 0])
        logits = model(CAT, NUM)
    torch.testing.assert_close(logits, expected)
    assert (star < 0).any(), "a negative star logit shows no ReLU would be hidden"


# -- PLE, MMoE, PEPNet ------------------------------------------------------------------------


def _loss_on_domain(model: torch.nn.Module, domain: int) -> torch.Tensor:
    return model(CAT, NUM)[CAT[:, 0] == domain].sum()


def test_ple_last_level_specific_expert_gets_no_gradient_from_another_domain():
    model = build("ple")
    assert isinstance(model, PLE)
    _loss_on_domain(model, 1).backward()
    grads = {slot: sum(p.grad.abs().sum().item() for p in model.last_level.specific[slot]
                       .parameters() if p.grad is not None) for slot in range(4)}
    assert grads[1] > 0 and grads[0] == grads[2] == grads[3] == 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.towers[2].parameters())


def test_single_level_ple_specific_experts_are_isolated_too():
    torch.manual_seed(0)
    model = build_ple(list(VOCAB), 1, ModelConfig(embed_dim=3, hidden=(5,)), domain_field=0,
                      num_domains=3)
    _loss_on_domain(model, 3).backward()
    for slot in range(4):
        grad = sum(p.grad.abs().sum().item() for p in model.last_level.specific[slot]
                   .parameters() if p.grad is not None)
        assert (grad > 0) == (slot == 3)


def test_ple_lower_level_specific_experts_feed_every_domain_through_the_shared_gate():
    model = build("ple")
    _loss_on_domain(model, 1).backward()
    level = model.lower_levels[0]
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for slot in (2, 3) for p in level.specific[slot].parameters())


def test_mmoe_gates_sum_to_one_and_follow_the_domain():
    model = scrambled("mmoe")
    assert isinstance(model, MMoE)
    with torch.no_grad():
        gates = model.gate_weights(CAT, NUM)
        x = model.inputs(CAT, NUM)
    assert gates.shape == (7, MMoEOptions().num_experts)
    torch.testing.assert_close(gates.sum(1), torch.ones(7))
    assert (gates > 0).all()
    torch.testing.assert_close(gates[3], torch.softmax(model.gates[1](x[3]), 0))


def test_pepnet_gates_lie_in_zero_to_gamma():
    model = scrambled("pepnet")
    assert isinstance(model, PEPNet)
    model.embedding_gate.scale = 2.0
    with torch.no_grad():
        model.embedding_gate.out.bias.fill_(50.0)  # saturated gates stay below gamma
        embedding_gate, layer_gates, _ = model.gates(CAT, NUM)
    assert embedding_gate.shape == (7, 3)
    assert [gate.shape[1] for gate in layer_gates] == [3 * 3 + 1, 6]
    for gate in (embedding_gate, *layer_gates):
        assert ((gate > 0) & (gate <= PEPNetOptions().gate_scale)).all()
    assert (embedding_gate > 1.99).all() and (layer_gates[0] < 2.0).all()


def test_pepnet_gates_do_not_move_the_embeddings_they_condition_on():
    model = build("pepnet")
    embedding_gate, _, _ = model.gates(CAT, NUM)
    embedding_gate.sum().backward()
    grad = model.inputs.embedding.table.weight.grad.to_dense()
    # only the domain field's rows (0..3) get a gradient through the gate's condition
    assert torch.nonzero(grad.abs().sum(1)).squeeze(1).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("name", NAMES)
def test_trainer_fits_each_model_on_a_domain_dependent_label(name):
    """The label flips with the domain; every model learns it with the shared trainer."""
    generator = torch.Generator().manual_seed(0)
    domain = torch.randint(1, 4, (256,), generator=generator)
    item = torch.randint(0, 5, (256,), generator=generator)
    cat = torch.stack([domain, item, torch.zeros_like(item)], dim=1)
    label = ((item % 2 == 0) ^ (domain == 2)).float()
    data = CTRDataset(cat, torch.zeros(256, 1), label)
    result = fit(build(name), data, data, TrainConfig(
        epochs=12, batch_size=64, lr=1e-2, embedding_lr=5e-2, patience=12, progress=False,
        num_threads=1))
    assert result.best_valid_auc == 1.0


def test_each_model_is_a_strategy_trained_on_every_row_with_its_domain():
    from graphsel.data.datasets import get_dataset
    from graphsel.transfer.features import DOMAIN_FIELD
    from graphsel.transfer.models.multidomain_options import MULTI_DOMAIN_MODELS
    from graphsel.transfer.protocol.runner import compare_strategies
    from graphsel.transfer.protocol.split import ProtocolConfig, split_by_time
    from graphsel.transfer.protocol.strategies import get_strategy
    from graphsel.transfer.train.options import TrainConfig
    from graphsel.transfer.train.trainer import Trainer

    split = get_dataset("synthetic")(scale=0.05)
    source, target = split.source, split.target
    protocol = ProtocolConfig(periods=1, n_boot=20)  # domain_feature "auto": forced on here
    fits = []
    trainer_fit = Trainer.fit

    def spy_fit(self, model, rows, valid=None, **kw):
        fits.append((type(model).__name__, len(rows)))
        return trainer_fit(self, model, rows, valid, **kw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "fit", spy_fit)
        results = compare_strategies(
            source, target, ["star", "mmoe"], model=ModelConfig(embed_dim=4, hidden=(8,)),
            train=TrainConfig(epochs=1, batch_size=256, num_threads=1, progress=False),
            protocol=protocol)
    time_split = split_by_time(source, target, protocol)
    rows = len(time_split.periods_rows[0]) + int(time_split.source_window(
        0, source.ts[time_split.source_rows]).sum())
    assert fits == [("STAR", rows), ("MMoE", rows)]
    assert {e.strategy: e.choice.domain_feature for e in results.effort} == {
        "star": True, "mmoe": True}
    assert get_strategy("star").options == MULTI_DOMAIN_MODELS["star"]
    assert DOMAIN_FIELD == "domain_id"


def test_star_finetune_trains_star_on_every_row_then_fine_tunes_it_on_the_target_rows():
    from graphsel.data.datasets import get_dataset
    from graphsel.transfer.models.options import FinetuneOptions
    from graphsel.transfer.protocol.runner import compare_strategies
    from graphsel.transfer.protocol.split import ProtocolConfig, split_by_time
    from graphsel.transfer.train.options import TrainConfig
    from graphsel.transfer.train.trainer import Trainer

    split = get_dataset("synthetic")(scale=0.05)
    source, target = split.source, split.target
    protocol = ProtocolConfig(periods=2, n_boot=20)
    fits = []
    trainer_fit = Trainer.fit

    def spy_fit(self, model, rows, valid=None, *, keep_start=False):
        fits.append((type(model).__name__, len(rows), keep_start, self.config.lr))
        return trainer_fit(self, model, rows, valid, keep_start=keep_start)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "fit", spy_fit)
        results = compare_strategies(
            source, target, ["star_finetune"], model=ModelConfig(embed_dim=4, hidden=(8,)),
            train=TrainConfig(epochs=1, batch_size=256, lr=0.01, num_threads=1,
                              progress=False),
            protocol=protocol, strategy_options={"star_finetune": FinetuneOptions(0.5)})
    time_split = split_by_time(source, target, protocol)
    ts = source.ts[time_split.source_rows]
    expected = []
    for period in range(2):
        t = len(time_split.periods_rows[period])
        window = int(time_split.source_window(period, ts).sum())
        expected += [("STAR", t + window, False, 0.01), ("STAR", t, True, 0.005)]
    assert fits == expected
    assert [e.choice.domain_feature for e in results.effort] == [True]


@pytest.mark.parametrize("name", NAMES)
def test_fm_config_adds_the_fm_term_to_every_models_network(name):
    torch.manual_seed(0)
    model = get_model(name)(list(VOCAB), 1, ModelConfig(embed_dim=3, hidden=(6, 4), fm=True),
                            domain_field=0, num_domains=3).eval()
    with torch.no_grad():
        model.inputs.fm.first_order.table.weight.normal_()
        embedded = model.inputs.embedding(CAT)
        pairwise = sum(embedded[:, f] * embedded[:, g] for f in range(3)
                       for g in range(f + 1, 3)).sum(1)
        first = model.inputs.fm.first_order(CAT).sum((1, 2))
        torch.testing.assert_close(model(CAT, NUM), model.network(CAT, NUM) + first + pairwise)
    assert build(name).inputs.fm is None
