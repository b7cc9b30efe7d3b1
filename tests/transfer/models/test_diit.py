"""DIIT: gradient reversal, gate over sources, frozen sources, target-only inference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphsel.errors import InputError
from graphsel.transfer.data import CTRBatch
from graphsel.transfer.models import diit as diit_module
from graphsel.transfer.models.base import ModelConfig, build_base_model, get_model
from graphsel.transfer.models.diit import (
    DIIT,
    DIITConfig,
    DIITOptions,
    build_diit,
    diit_loss,
    grad_reverse,
)
from graphsel.transfer.train.trainer import TrainConfig, Trainer, predict
from tests.transfer.tiny import TINY, TINY_BN, VOCAB, tiny_dataset, tiny_model

torch.set_num_threads(1)



def _diit(num_sources: int = 3, config: ModelConfig = TINY, **options) -> DIIT:
    sources = [tiny_model(10 + k, config) for k in range(num_sources)]
    torch.manual_seed(0)
    return DIIT(sources, tiny_model(1, config), DIITConfig(**options))


def _batch(n: int = 6) -> CTRBatch:
    return tiny_dataset(n).batch(slice(0, n))


class _Unreachable(nn.Module):
    """Stands in for a source model that inference must never call."""

    def forward(self, *args):
        raise AssertionError("a source model was called")

    forward_hidden = forward


# -- gradient reversal ------------------------------------------------------------------------


@pytest.mark.parametrize("coefficient", [1.0, 0.5])
def test_gradient_reversal_flips_and_scales_the_encoders_gradient_only(coefficient):
    torch.manual_seed(0)
    encoder, discriminator = nn.Linear(3, 2), nn.Linear(2, 1)
    x, domain = torch.randn(5, 3), torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0])

    def grads(reverse: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        encoder.zero_grad(), discriminator.zero_grad()
        hidden = encoder(x)
        if reverse:
            hidden = grad_reverse(hidden, coefficient)
        F.binary_cross_entropy_with_logits(discriminator(hidden).squeeze(1), domain).backward()
        return ([p.grad.clone() for p in encoder.parameters()],
                [p.grad.clone() for p in discriminator.parameters()])

    plain_encoder, plain_discriminator = grads(reverse=False)
    reversed_encoder, reversed_discriminator = grads(reverse=True)
    for plain, flipped in zip(plain_encoder, reversed_encoder):
        assert plain.abs().sum() > 0
        torch.testing.assert_close(flipped, -coefficient * plain)
    for plain, same in zip(plain_discriminator, reversed_discriminator):
        torch.testing.assert_close(same, plain)  # the discriminator still learns to separate


def test_gradient_reversal_is_the_identity_forward():
    x = torch.randn(4, 2)
    assert torch.equal(grad_reverse(x, 0.3), x)


def test_diit_reverses_the_domain_loss_into_the_target_model():
    # Oracle: the same domain loss built by hand without the reversal layer.
    model = _diit(reversal=0.5)
    batch = _batch()
    output = model.forward_train(batch.cat, batch.num)
    F.binary_cross_entropy_with_logits(output.domain_logits, output.domain_labels).backward()
    reversed_grad = model.target.mlp.layers[1].linear.weight.grad.clone()
    discriminator_grad = model.discriminator[1].linear.weight.grad.clone()
    model.zero_grad()
    student = model.target.forward_hidden(batch.cat, batch.num)
    teacher_last = output.teacher.hidden[-1].detach()
    logits = model.discriminator(torch.cat([teacher_last, student.hidden[-1]]))
    F.binary_cross_entropy_with_logits(logits, output.domain_labels).backward()
    assert reversed_grad.abs().sum() > 0
    torch.testing.assert_close(reversed_grad, -0.5 * model.target.mlp.layers[1].linear.weight.grad)
    torch.testing.assert_close(discriminator_grad, model.discriminator[1].linear.weight.grad)


# -- gate and teacher -------------------------------------------------------------------------


def test_gate_weights_sum_to_one_and_aggregate_the_sources():
    model = _diit(num_sources=3)
    batch = _batch()
    output = model.forward_train(batch.cat, batch.num)
    assert output.gate.shape == (6, 3) and bool((output.gate >= 0).all())
    torch.testing.assert_close(output.gate.sum(dim=1), torch.ones(6))
    sources = [tower.model.forward_hidden(batch.cat, batch.num) for tower in model.sources]
    expected_logits = sum(output.gate[:, k] * sources[k].logits for k in range(3))
    torch.testing.assert_close(output.teacher.logits, expected_logits)
    expected_layer1 = sum(output.gate[:, k:k + 1] * sources[k].hidden[1] for k in range(3))
    torch.testing.assert_close(output.teacher.hidden[1], expected_layer1)
    assert output.domain_labels.tolist() == [0.0] * 6 + [1.0] * 6


def test_sources_must_match_the_target_widths():
    other = build_base_model(VOCAB, 1, ModelConfig(embed_dim=4, hidden=(8, 3)))
    with pytest.raises(InputError, match="source model 1 has hidden widths"):
        DIIT([tiny_model(0), other], tiny_model(1))
    with pytest.raises(InputError, match="at least one source"):
        DIIT([], tiny_model(1))


# -- frozen sources ---------------------------------------------------------------------------


def test_sources_are_bit_identical_after_a_trainer_step_and_the_rest_moves():
    model = _diit(num_sources=2, config=TINY_BN)
    before = {k: v.clone() for k, v in model.sources.state_dict().items()}
    trained = {name: p.clone() for name, p in model.named_parameters() if p.requires_grad}
    Trainer(TrainConfig(epochs=1, batch_size=8, lr=0.05, progress=False),
            loss_fn=diit_loss()).fit(model, tiny_dataset())
    after = model.sources.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(p.requires_grad for p in model.sources.parameters())
    params = dict(model.named_parameters())
    for name in ("target.mlp.layers.0.linear.weight", "gate.weight",
                 "discriminator.1.linear.weight"):
        assert not torch.equal(trained[name], params[name]), name


# -- inference --------------------------------------------------------------------------------


def test_inference_touches_no_source_model():
    model = _diit(num_sources=2)
    batch, data = _batch(), tiny_dataset(10)
    calls = []
    for tower in model.sources:
        # On the embedding: every path through a source model (forward or forward_hidden,
        # which bypasses the model's own hooks) reads it.
        tower.model.embedding.register_forward_pre_hook(lambda module, args: calls.append(module))
    model.forward_train(batch.cat, batch.num)
    assert len(calls) == 2  # the hooks do see the training path

    calls.clear()
    expected = torch.sigmoid(model.target.eval()(data.cat, data.num)).detach().double()
    probabilities = predict(model, data)
    assert calls == []
    assert probabilities.tolist() == pytest.approx(expected.tolist(), abs=1e-7)

    model.sources = nn.ModuleList([_Unreachable(), _Unreachable()])
    for mode in (False, True):
        model.train(mode)
        torch.testing.assert_close(model(batch.cat, batch.num),
                                   model.target(batch.cat, batch.num))
    with pytest.raises(AssertionError, match="a source model was called"):
        model.forward_train(batch.cat, batch.num)


# -- refresh and registry ---------------------------------------------------------------------


def test_refresh_sources_copies_in_order_and_checks_the_count():
    model = _diit(num_sources=2)
    new = [tiny_model(20), tiny_model(21)]
    model.refresh_sources(new)
    for tower, source in zip(model.sources, new):
        state = source.state_dict()
        assert all(torch.equal(v, state[k]) for k, v in tower.model.state_dict().items())
    with pytest.raises(InputError, match="got 1 source models, DIIT holds 2"):
        model.refresh_sources(new[:1])


def test_registered_builder():
    assert get_model("diit") is build_diit
    model = build_diit(VOCAB, 1, TINY, DIITOptions(num_sources=4))
    assert model.num_sources == 4 and model.gate.out_features == 4


def test_doctests():
    import doctest

    assert doctest.testmod(diit_module).failed == 0
