"""SyNCRec's parts on tiny inputs: stop-gradient, gates, LC-NTG, SC-MIM."""

from __future__ import annotations

import math

import pytest
import torch

from graphsel.errors import InputError
from graphsel.transfer.sequential.model import (
    SyNCRec,
    ntg_update,
    ntg_weights,
    sc_mim_loss,
)
from graphsel.transfer.sequential.options import (
    NTGConfig,
    SyNCRecConfig,
    variant_config,
)

ITEM_DOMAIN = torch.tensor([-1, 0, 0, 0, 1, 1, 1])  # item codes 1-3 in domain 0, 4-6 in 1
ITEMS = torch.tensor([[0, 1, 4, 2, 5], [1, 2, 3, 4, 6]])


def _model(**changes) -> SyNCRec:
    torch.manual_seed(0)
    config = SyNCRecConfig(hidden=8, num_layers=1, max_length=5, dropout=0.0, **changes)
    return SyNCRec(ITEM_DOMAIN, 2, config)


def _expert_grads(model: SyNCRec) -> list[float]:
    return [sum(float(p.grad.abs().sum()) for p in expert.parameters() if p.grad is not None)
            for expert in model.experts]


def _encode(model: SyNCRec, task: str, path: str) -> torch.Tensor:
    return model.encode(ITEMS, task) if path == "reference" else model.encode_tasks(ITEMS)[task]


@pytest.mark.parametrize("path", ["reference", "fast"])
@pytest.mark.parametrize("task, trained", [("sdsr", [4]), ("cdsr", [0, 1, 2, 3])])
def test_stop_gradient_isolates_the_other_tasks_experts(task, trained, path):
    model = _model()
    _encode(model, task, path).pow(2).sum().backward()
    grads = _expert_grads(model)
    assert [k for k, g in enumerate(grads) if g > 0] == trained
    assert all(g == 0.0 for k, g in enumerate(grads) if k not in trained)  # exact zeros
    other = "cdsr" if task == "sdsr" else "sdsr"
    assert all(p.grad is None for p in model.gate(other).parameters())
    assert all(p.grad is not None for p in model.gate(task).parameters())


@pytest.mark.parametrize("path", ["reference", "fast"])
def test_without_acmoe_one_pool_and_one_gate_train_on_both_tasks(path):
    model = _model(acmoe=False)
    _encode(model, "sdsr", path).pow(2).sum().backward()
    assert all(g > 0 for g in _expert_grads(model))
    assert model.gate("sdsr") is model.gate("cdsr")


def test_gate_partition():
    assert SyNCRecConfig(num_experts=5, cdsr_share=0.8).expert_split() == ((0, 1, 2, 3), (4,))
    # each task keeps at least one expert
    assert SyNCRecConfig(num_experts=2, cdsr_share=1.0).expert_split() == ((0,), (1,))
    assert SyNCRecConfig(num_experts=4, cdsr_share=0.0).expert_split() == ((0,), (1, 2, 3))
    model = _model()
    assert model.gate("sdsr") is not model.gate("cdsr")
    model.eval()
    weights = model.gate("cdsr")(torch.randn(2, 5, 8))
    assert weights.shape == (2, 5, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 5))
    with pytest.raises(InputError, match="num_experts must be >= 2"):
        SyNCRecConfig(num_experts=1)


def test_separate_experts_are_separate_parameters():
    model = _model()
    pointers = {p.data_ptr() for expert in model.experts for p in expert.parameters()}
    assert len(pointers) == len(list(model.experts[0].parameters())) * 5


def test_lc_ntg_update_on_hand_made_losses():
    lam = torch.zeros(2)
    present = torch.tensor([True, True])
    # L_S = (1.0, 2.0), L_C = (2.0, 1.0): domain 0 loses from joint training (gap -1)
    lam = ntg_update(lam, torch.tensor([1.0, 2.0]) - torch.tensor([2.0, 1.0]), present, 0.9, 1.0)
    assert lam.tolist() == [-1.0, 1.0]
    weights = ntg_weights(lam, 1.0)
    assert weights.tolist() == pytest.approx([1 / (1 + math.e ** 2), 1 / (1 + math.e ** -2)])
    lam = ntg_update(lam, torch.zeros(2), torch.tensor([True, False]), 0.9, 1.0)
    assert lam.tolist() == pytest.approx([-0.9, 1.0])
    assert ntg_weights(lam, 1e6).tolist() == pytest.approx([0.5, 0.5])
    with pytest.raises(InputError, match="ntg.beta"):
        NTGConfig(beta=-0.5)


def test_lc_ntg_inside_the_model_moves_lambda_by_the_gap():
    model = _model(ntg=NTGConfig(alpha=0.0, beta=1.0))
    model.train()
    targets = torch.tensor([[1, 4, 2, 5, 3], [2, 3, 4, 6, 5]])
    negatives = torch.tensor([[3, 6, 3, 6, 1], [3, 1, 6, 4, 6]])
    parts = model.losses(ITEMS, targets, negatives, targets, negatives)
    assert model.ntg_lambda.tolist() == pytest.approx((parts.sdsr - parts.cdsr).tolist())
    assert parts.weights.tolist() == pytest.approx(ntg_weights(model.ntg_lambda, 1.0).tolist())


def test_sc_mim_on_a_tiny_batch():
    single = torch.tensor([[[2.0]], [[1.0]]])
    cross = torch.tensor([[[1.0]], [[3.0]]])
    valid = torch.ones(2, 1, dtype=torch.bool)
    domain = torch.zeros(2, 1, dtype=torch.long)

    def softplus(x):
        return math.log1p(math.exp(x))

    # positives 2*1 and 1*3; negatives pair each user with the other's cross: 2*3 and 1*1
    expected = (softplus(-2) + softplus(6) + softplus(-3) + softplus(1)) / 2
    assert float(sc_mim_loss(single, cross, valid, domain, 1)) == pytest.approx(expected)
    # a padded neighbour drops the pair; one user alone has no negative
    assert float(sc_mim_loss(single[:1], cross[:1], valid[:1], domain[:1], 1)) == 0.0


@pytest.mark.parametrize("name", ["syncrec", "syncrec_no_lcntg", "syncrec_no_scmim",
                                  "syncrec_no_acmoe", "sasrec_sdsr", "sasrec_cdsr"])
def test_every_variant_scores_domain_items(name):
    torch.manual_seed(0)
    config = variant_config(name, SyNCRecConfig(hidden=8, num_layers=1, max_length=5))
    model = SyNCRec(ITEM_DOMAIN, 2, config).eval()
    vectors = model.user_vectors(ITEMS, torch.tensor([0, 1]))
    scores = model.item_scores(vectors, torch.tensor([[1, 2], [4, 5]]))
    assert scores.shape == (2, 2) and torch.isfinite(scores).all()


VARIANT_NAMES = ["syncrec", "syncrec_no_acmoe", "sasrec_sdsr", "sasrec_cdsr"]
BATCH = torch.tensor([[0, 1, 4, 2, 5], [1, 2, 3, 4, 6], [0, 0, 0, 4, 5]])
TARGETS = torch.tensor([[1, 4, 2, 5, 3], [2, 3, 4, 6, 5], [0, 0, 0, 5, 6]])
NEGATIVES = torch.tensor([[3, 6, 3, 6, 1], [3, 1, 6, 4, 6], [0, 0, 0, 6, 4]])


def _variant(name: str) -> SyNCRec:
    torch.manual_seed(0)
    config = variant_config(name, SyNCRecConfig(hidden=8, num_layers=2, max_length=5,
                                                dropout=0.0, gate_noise=False))
    return SyNCRec(ITEM_DOMAIN, 2, config)


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_fast_encoding_equals_the_reference(name):
    model = _variant(name)
    for training in (True, False):
        model.train(training)
        fast = model.encode_tasks(BATCH)
        assert set(fast) == set(model.tasks)
        for task in model.tasks:
            torch.testing.assert_close(fast[task], model.encode(BATCH, task), rtol=0, atol=1e-6)
        last = torch.tensor([4, 2, 3])
        at_last = model.encode_tasks(BATCH, query=last)
        for task in model.tasks:
            torch.testing.assert_close(at_last[task], fast[task][torch.arange(3), last],
                                       rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_fast_losses_and_gradients_equal_the_reference(name):
    model = _variant(name).train()
    results = []
    for reference in (True, False):
        model.ntg_lambda.zero_()
        model.zero_grad()
        parts = model.losses(BATCH, TARGETS, NEGATIVES, TARGETS, NEGATIVES, reference=reference)
        parts.total.backward()
        results.append((parts, {n: p.grad.clone() for n, p in model.named_parameters()
                                if p.grad is not None}))
    (slow, slow_grads), (fast, fast_grads) = results
    torch.testing.assert_close(fast.total, slow.total, rtol=0, atol=1e-6)
    torch.testing.assert_close(fast.sdsr, slow.sdsr, rtol=0, atol=1e-6)
    torch.testing.assert_close(fast.cdsr, slow.cdsr, rtol=0, atol=1e-6)
    assert set(fast_grads) == set(slow_grads)
    for name_ in slow_grads:
        torch.testing.assert_close(fast_grads[name_], slow_grads[name_], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_fast_user_vectors_equal_the_reference(name):
    model = _variant(name).eval()
    # the third row holds no item of domain 0: the SDSR baseline gives it a zero vector
    for domains in ([0, 1, 0], [1, 0, 1]):
        target = torch.tensor(domains)
        torch.testing.assert_close(model.user_vectors(BATCH, target),
                                   model.user_vectors(BATCH, target, reference=True),
                                   rtol=0, atol=1e-6)
