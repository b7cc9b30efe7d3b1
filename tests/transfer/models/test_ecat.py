"""ECAT AKD-CT: adaptive distillation intensity, gated adapters, frozen source model."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from graphsel.transfer.data import CTRBatch, CTRDataset
from graphsel.transfer.models import ecat as ecat_module
from graphsel.transfer.models.base import (
    ModelConfig,
    ModelOutput,
    get_model,
)
from graphsel.transfer.models.ecat import (
    ECAT,
    DistillConfig,
    ECATOptions,
    TeacherStudentOutput,
    adaptive_distillation_loss,
    build_ecat,
    distillation_intensity,
    distillation_terms,
    ecat_loss,
)
from graphsel.transfer.train.trainer import TrainConfig, Trainer
from tests.transfer.tiny import TINY, TINY_BN, VOCAB, tiny_dataset, tiny_model

torch.set_num_threads(1)


def _batch(n: int = 8, seed: int = 0) -> CTRBatch:
    return tiny_dataset(n, seed).batch(slice(0, n))





# -- intensity --------------------------------------------------------------------------------


def test_intensity_is_larger_where_the_source_loss_is_lower():
    label = torch.tensor([1.0, 1.0, 0.0, 0.0])
    student = torch.zeros(4)  # loss ln 2 everywhere
    teacher = torch.tensor([2.0, -2.0, -2.0, 2.0])  # right on rows 0 and 2, wrong on 1 and 3
    w = distillation_intensity(student, teacher, label, beta=5.0)
    assert w[0] > 0.5 > w[1] and w[2] > 0.5 > w[3]
    # by hand: bce(2, y=1) = softplus(-2), bce(0, .) = ln 2
    expected = 1 / (1 + math.exp(-5.0 * (math.log(2) - math.log1p(math.exp(-2.0)))))
    assert w[0].item() == pytest.approx(expected, rel=1e-5)
    assert w[2].item() == pytest.approx(expected, rel=1e-5)


def test_intensity_grows_with_the_source_advantage_and_beta_zero_is_constant():
    teacher = torch.linspace(-3, 3, 7)  # for label 1, a larger logit is a lower loss
    w = distillation_intensity(torch.zeros(7), teacher, torch.ones(7))
    assert bool((w[1:] > w[:-1]).all())
    assert torch.equal(distillation_intensity(torch.zeros(7), teacher, torch.ones(7), beta=0.0),
                       torch.full((7,), 0.5))


def test_intensity_is_a_constant():
    student = torch.zeros(3, requires_grad=True)
    w = distillation_intensity(student, torch.ones(3), torch.ones(3))
    assert not w.requires_grad


# -- distillation terms -----------------------------------------------------------------------


def test_distillation_terms_by_hand():
    student = ModelOutput(torch.tensor([1.0, 0.0]),
                          (torch.tensor([[1.0, 1.0], [0.0, 0.0]]), torch.tensor([[2.0], [0.0]])))
    teacher = ModelOutput(torch.tensor([0.0, 0.0]),
                          (torch.tensor([[0.0, 1.0], [0.0, 2.0]]), torch.tensor([[0.0], [1.0]])))
    # row 0: logit 1, layer0 mse 0.5, layer1 mse 4 -> 1 + (0.5 + 4) / 2
    # row 1: logit 0, layer0 mse 2,   layer1 mse 1 -> 0 + (2 + 1) / 2
    terms = distillation_terms(student, teacher)
    torch.testing.assert_close(terms, torch.tensor([3.25, 1.5]))
    only_last = distillation_terms(student, teacher, layers=(-1,), logit_weight=0.0)
    torch.testing.assert_close(only_last, torch.tensor([4.0, 1.0]))


def test_adaptive_loss_weighs_each_sample_by_its_intensity():
    torch.manual_seed(0)
    hidden = (torch.randn(4, 3),)
    student = ModelOutput(torch.zeros(4, requires_grad=True), hidden)
    teacher = ModelOutput(torch.tensor([2.0, -2.0, 1.0, 0.5]), (torch.randn(4, 3),))
    label, weight = torch.tensor([1.0, 1.0, 0.0, 1.0]), torch.tensor([1.0, 2.0, 1.0, 0.0])
    config = DistillConfig(beta=3.0)
    loss = adaptive_distillation_loss(TeacherStudentOutput(student, teacher), label, weight,
                                      config)
    w = torch.sigmoid(3.0 * (F.binary_cross_entropy_with_logits(student.logits, label,
                                                                 reduction="none")
                             - F.binary_cross_entropy_with_logits(teacher.logits, label,
                                                                  reduction="none")))
    terms = teacher.logits ** 2 + ((hidden[0] - teacher.hidden[0]) ** 2).mean(1)
    torch.testing.assert_close(loss, (weight * w * terms).sum() / weight.sum())


# -- the model --------------------------------------------------------------------------------


def test_initial_ecat_computes_the_target_model_and_the_gate_can_shut_the_source_out():
    source, target = tiny_model(0), tiny_model(1)
    batch = _batch()
    torch.manual_seed(2)
    model = ECAT(source, target)
    torch.testing.assert_close(model(batch.cat, batch.num), target(batch.cat, batch.num),
                               atol=1e-3, rtol=0)
    with torch.no_grad():
        for adapter in model.adapters:
            adapter.value.weight.fill_(1.0)
    assert (model(batch.cat, batch.num) - target(batch.cat, batch.num)).abs().max() > 1e-2
    with torch.no_grad():
        for gate in model.gates:
            gate.weight.zero_()
            gate.bias.fill_(-1e4)  # sigmoid -> 0: the target lets no source knowledge in
    assert torch.equal(model(batch.cat, batch.num), target(batch.cat, batch.num))


def test_a_shut_gate_computes_a_target_model_with_an_fm_term():
    fm = ModelConfig(embed_dim=4, hidden=(8, 4), fm=True)
    source, target = tiny_model(0, fm), tiny_model(1, fm)
    with torch.no_grad():
        target.fm.first_order.table.weight.normal_()
    batch = _batch()
    model = ECAT(source, target)
    with torch.no_grad():
        for gate in model.gates:
            gate.weight.zero_()
            gate.bias.fill_(-1e4)
    assert torch.equal(model(batch.cat, batch.num), target(batch.cat, batch.num))
    deep = target.head(target.mlp(target.mlp_input(batch.cat, batch.num)))
    assert (target(batch.cat, batch.num) - deep).abs().max() > 0.1  # the FM term counts


def test_no_gradient_reaches_the_source_model():
    model = ECAT(tiny_model(0), tiny_model(1))
    batch = _batch()
    output = model.forward_both(batch.cat, batch.num)
    assert not output.teacher.logits.requires_grad
    assert not any(h.requires_grad for h in output.teacher.hidden)
    ecat_loss(ECATOptions(distill_weight=1.0))(model, batch).backward()
    assert all(p.grad is None for p in model.source.parameters())
    assert model.target.mlp.layers[0].linear.weight.grad.abs().sum() > 0
    assert model.gates[0].weight.grad is not None


def test_source_is_bit_identical_after_a_trainer_step():
    model = ECAT(tiny_model(0, TINY_BN), tiny_model(1, TINY_BN))
    before = {k: v.clone() for k, v in model.source.state_dict().items()}
    target_before = model.target.head.linear.weight.clone()
    generator = torch.Generator().manual_seed(1)
    data = CTRDataset(torch.randint(0, 4, (32, 2), generator=generator),
                      torch.randn(32, 1, generator=generator),
                      torch.randint(0, 2, (32,), generator=generator))
    Trainer(TrainConfig(epochs=1, batch_size=8, lr=0.05, progress=False),
            loss_fn=ecat_loss(ECATOptions(distill_weight=0.5))).fit(model, data)
    after = model.source.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(target_before, model.target.head.linear.weight)


def test_distillation_moves_the_target_towards_the_source():
    model = ECAT(tiny_model(0), tiny_model(1))
    batch = _batch(16)
    config = DistillConfig(beta=0.0)

    def distill_only(m, b):
        return adaptive_distillation_loss(m.forward_both(b.cat, b.num), b.label, b.weight,
                                          config)

    start = distill_only(model, batch).item()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    for _ in range(20):
        optimizer.zero_grad()
        distill_only(model, batch).backward()
        optimizer.step()
    assert distill_only(model, batch).item() < 0.5 * start


def test_registered_builder():
    assert get_model("ecat") is build_ecat
    model = build_ecat(VOCAB, 1, TINY)
    batch = _batch()
    assert model(batch.cat, batch.num).shape == (8,)


def test_doctests():
    import doctest

    assert doctest.testmod(ecat_module).failed == 0
