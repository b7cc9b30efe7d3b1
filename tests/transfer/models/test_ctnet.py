"""CTNet: GLU adapters, frozen source tower, near-zero start, continual refresh."""

from __future__ import annotations

import pytest
import torch

from graphsel.errors import InputError
from graphsel.transfer.models import ctnet as ctnet_module
from graphsel.transfer.models.base import ModelConfig, build_base_model, get_model
from graphsel.transfer.models.ctnet import CTNet, GLUAdapter, LinearAdapter, build_ctnet
from graphsel.transfer.train.trainer import TrainConfig, Trainer
from tests.transfer.tiny import (
    TINY,
    TINY_BN,
    VOCAB,
    snapshot,
    tiny_dataset,
    tiny_inputs,
    tiny_model,
)

torch.set_num_threads(1)

ONE_EPOCH = TrainConfig(epochs=1, batch_size=8, lr=0.05, progress=False)


# -- adapters ---------------------------------------------------------------------------------


def test_glu_adapter_is_u1_z_times_sigmoid_u2_z():
    torch.manual_seed(0)
    adapter = GLUAdapter(3, 2, init_std=0.5)
    z = torch.randn(4, 3)
    u1, u2 = adapter.value.weight, adapter.gate.weight
    torch.testing.assert_close(adapter(z), (z @ u1.T) * torch.sigmoid(z @ u2.T))
    assert adapter.value.bias is None and adapter.gate.bias is None


def test_adapters_start_near_zero_and_zero_std_gives_exact_zero():
    torch.manual_seed(0)
    z = torch.randn(16, 8)
    for kind in (GLUAdapter, LinearAdapter):
        assert kind(8, 4)(z).abs().max() < 1e-2
        assert torch.equal(kind(8, 4, init_std=0.0)(z), torch.zeros(16, 4))


def test_unknown_adapter_lists_the_choices():
    with pytest.raises(InputError, match=r"Could not resolve adapter 'gru' among \['glu', "
                                         r"'linear'\]"):
        CTNet(tiny_model(0), tiny_model(1), adapter="gru")


def test_towers_with_different_depths_are_refused():
    shallow = build_base_model(VOCAB, 1, ModelConfig(embed_dim=4, hidden=(8,)))
    with pytest.raises(InputError, match="2 MLP layers, the target tower 1"):
        CTNet(tiny_model(0), shallow)


# -- forward ----------------------------------------------------------------------------------


def test_near_zero_adapters_reproduce_the_target_model():
    source, target = tiny_model(0, TINY_BN), tiny_model(1, TINY_BN)
    cat, num = tiny_inputs()
    for adapter in ("glu", "linear"):
        torch.manual_seed(2)
        model = CTNet(source, target, adapter=adapter).eval()
        target.eval()
        # Logits of order 0.1; a trained adapter moves them by > 1e-2 (next test).
        torch.testing.assert_close(model(cat, num), target(cat, num), atol=1e-3, rtol=0)
    exact = CTNet(source, target, adapter_init_std=0.0).eval()
    assert torch.equal(exact(cat, num), target(cat, num))


def test_zero_adapters_reproduce_a_target_model_with_an_fm_term():
    fm = ModelConfig(embed_dim=4, hidden=(8, 4), fm=True)
    source, target = tiny_model(0, fm), tiny_model(1, fm)
    with torch.no_grad():
        target.fm.first_order.table.weight.normal_()
    cat, num = tiny_inputs()
    model = CTNet(source, target, adapter_init_std=0.0)
    assert torch.equal(model(cat, num), target(cat, num))
    assert (target(cat, num) - target.head(target.mlp(target.mlp_input(cat, num)))).abs().max(
        ) > 0.1  # the FM term is a real part of what is reproduced


def test_a_non_zero_adapter_changes_the_output():
    source, target = tiny_model(0), tiny_model(1)
    model = CTNet(source, target, adapter_init_std=0.0)
    cat, num = tiny_inputs()
    with torch.no_grad():
        model.adapters[1].value.weight.fill_(1.0)  # layer 2 now reads the source tower
    assert (model(cat, num) - target(cat, num)).abs().max() > 1e-2


def test_adapter_l_reads_the_source_input_to_layer_l():
    # Oracle: CTNet eq. 4 written out layer by layer.
    source, target = tiny_model(0), tiny_model(1)
    torch.manual_seed(3)
    model = CTNet(source, target, adapter="linear", adapter_init_std=0.3)
    cat, num = tiny_inputs()
    z_source = source.mlp_input(cat, num)
    z = target.mlp_input(cat, num)
    for layer, source_layer, adapter in zip(target.mlp.layers, source.mlp.layers,
                                            model.adapters):
        z, z_source = (torch.relu(layer.linear(z) + z_source @ adapter.linear.weight.T),
                       torch.relu(source_layer.linear(z_source)))
    torch.testing.assert_close(model(cat, num), target.head(z))


# -- frozen source tower ----------------------------------------------------------------------


def test_source_tower_is_bit_identical_after_training_and_the_rest_moves():
    source, target = tiny_model(0, TINY_BN), tiny_model(1, TINY_BN)
    model = CTNet(source, target)
    frozen_before, target_before = snapshot(model.source), snapshot(model.target)
    adapters_before = snapshot(model.adapters)
    Trainer(ONE_EPOCH).fit(model, tiny_dataset())
    frozen_after = model.source.state_dict()
    # Parameters and BatchNorm buffers: train-mode BN would have moved running_mean.
    assert frozen_before.keys() == frozen_after.keys()
    assert all(torch.equal(frozen_before[k], frozen_after[k]) for k in frozen_before)
    assert not any(p.requires_grad for p in model.source.parameters())
    assert not torch.equal(target_before["mlp.layers.0.linear.weight"],
                           model.target.mlp.layers[0].linear.weight)
    assert not torch.equal(target_before["mlp.layers.0.norm.running_mean"],
                           model.target.mlp.layers[0].norm.running_mean)
    assert not torch.equal(adapters_before["0.value.weight"], model.adapters[0].value.weight)


def test_freezing_copies_the_source_and_leaves_the_callers_model_trainable():
    source = tiny_model(0)
    model = CTNet(source, tiny_model(1))
    assert all(p.requires_grad for p in source.parameters())
    assert model.source.model is not source
    assert model.source.model.embedding.table.weight.data_ptr() != \
        source.embedding.table.weight.data_ptr()


def test_source_tower_stays_in_eval_mode_and_gets_no_gradient():
    model = CTNet(tiny_model(0, TINY_BN), tiny_model(1, TINY_BN)).train()
    assert model.training and model.target.training
    assert not model.source.training and not any(m.training for m in model.source.modules())
    cat, num = tiny_inputs()
    model(cat, num).sum().backward()
    assert all(p.grad is None for p in model.source.parameters())
    assert model.adapters[0].value.weight.grad is not None


def test_refresh_source_copies_the_new_weights_and_stays_frozen():
    model = CTNet(tiny_model(0, TINY_BN), tiny_model(1, TINY_BN))
    retrained = tiny_model(5, TINY_BN)
    with torch.no_grad():
        retrained.mlp.layers[0].norm.running_mean.fill_(0.25)
    model.refresh_source(retrained)
    new_state = retrained.state_dict()
    assert all(torch.equal(v, new_state[k]) for k, v in model.source.model.state_dict().items())
    assert not any(p.requires_grad for p in model.source.parameters())
    with torch.no_grad():  # no shared storage: the source keeps training without us
        retrained.head.linear.weight.add_(1.0)
    assert not torch.equal(model.source.model.head.linear.weight, retrained.head.linear.weight)


# -- registry ---------------------------------------------------------------------------------


def test_registered_builder_makes_a_ctnet_of_the_base_architecture():
    assert get_model("ctnet") is build_ctnet
    model = build_ctnet(VOCAB, 1, TINY, adapter="linear")
    assert isinstance(model, CTNet) and isinstance(model.adapters[0], LinearAdapter)
    cat, num = tiny_inputs()
    assert model(cat, num).shape == (6,)
    assert [a.linear.weight.shape for a in model.adapters] == [(8, 9), (4, 8)]


def test_doctests():
    import doctest

    assert doctest.testmod(ctnet_module).failed == 0
