"""Base CTR model parts, hidden states, and the model registry."""

from __future__ import annotations

import copy

import pytest
import torch

from graphsel.errors import InputError
from graphsel.transfer.models import base as models
from graphsel.transfer.models.base import (
    CTRModel,
    EmbeddingBlock,
    MLPBlock,
    MLPLayer,
    ModelConfig,
    build_base_model,
    get_model,
    model_names,
    register_model,
)


@pytest.fixture
def model() -> CTRModel:
    torch.manual_seed(0)
    return build_base_model([3, 4], num_numeric=1, config=ModelConfig(embed_dim=2, hidden=(5, 3)))


def test_embedding_reads_field_offset_rows():
    block = EmbeddingBlock([3, 4], embed_dim=2)
    assert block.offsets.tolist() == [0, 3]
    out = block(torch.tensor([[1, 2], [0, 3]]))
    weight = block.table.weight
    assert out.shape == (2, 2, 2)
    assert torch.equal(out[0, 1], weight[5]) and torch.equal(out[1, 1], weight[6])
    assert torch.equal(out[1, 0], weight[0])


def test_forward_equals_the_parts_composed_by_hand(model):
    cat, num = torch.tensor([[1, 2], [0, 3]]), torch.tensor([[0.5], [-1.0]])
    x = torch.cat([model.embedding(cat).flatten(1), num], dim=1)
    for layer in model.mlp.layers:
        x = torch.relu(layer.linear(x))
    expected = (x @ model.head.linear.weight.T + model.head.linear.bias).squeeze(1)
    torch.testing.assert_close(model(cat, num), expected)
    assert model(cat, num).shape == (2,)


def test_forward_hidden_returns_input_and_every_layer(model):
    cat, num = torch.tensor([[1, 2], [0, 3]]), torch.tensor([[0.5], [-1.0]])
    output = model.forward_hidden(cat, num)
    assert [tuple(h.shape) for h in output.hidden] == [(2, 5), (2, 5), (2, 3)]
    torch.testing.assert_close(output.hidden[0], model.mlp_input(cat, num))
    torch.testing.assert_close(output.logits, model(cat, num))
    torch.testing.assert_close(output.logits, model.head(output.hidden[-1]))


def test_layer_extra_is_added_before_activation():
    torch.manual_seed(0)
    layer = MLPLayer(3, 2)
    x, extra = torch.randn(4, 3), torch.randn(4, 2)
    torch.testing.assert_close(layer(x, extra), torch.relu(layer.linear(x) + extra))


def test_block_extras_per_layer_and_length_check():
    torch.manual_seed(0)
    block = MLPBlock(3, (4, 2))
    x = torch.randn(5, 3)
    plain = block.forward_hidden(x)
    torch.testing.assert_close(plain[-1], block(x))
    shifted = block.forward_hidden(x, [None, torch.full((5, 2), 10.0)])
    torch.testing.assert_close(shifted[0], plain[0])
    torch.testing.assert_close(shifted[1], torch.relu(block.layers[1].linear(plain[0]) + 10.0))
    with pytest.raises(InputError, match="extras has 1 entries"):
        block.forward_hidden(x, [None])


def test_config_options_build_the_layers():
    model = build_base_model([2], config=ModelConfig(embed_dim=4, hidden=(8,), dropout=0.5,
                                                     batch_norm=True, sparse_embedding=False))
    layer = model.mlp.layers[0]
    assert isinstance(layer.norm, torch.nn.BatchNorm1d) and layer.dropout.p == 0.5
    assert not model.embedding.table.sparse
    assert model.mlp.in_dim == 4
    assert ModelConfig(hidden=[4, 2]).hidden == (4, 2)
    with pytest.raises(InputError, match="dropout"):
        ModelConfig(dropout=1.0)
    with pytest.raises(InputError, match="vocab_sizes"):
        EmbeddingBlock([], 4)


def test_sparse_embedding_gives_sparse_gradients(model):
    model(torch.tensor([[1, 2]]), torch.zeros(1, 1)).sum().backward()
    assert model.embedding.table.weight.grad.is_sparse
    assert model.head.linear.weight.grad.layout == torch.strided


def test_registry_resolves_base_and_lists_names_on_error():
    assert get_model("base") is build_base_model
    assert "base" in model_names()
    with pytest.raises(InputError, match=r"Could not resolve model 'nope' among \[.*'base'"):
        get_model("nope")


def test_register_model_rejects_duplicates(monkeypatch):
    # into a copy of the registry, dropped afterwards
    monkeypatch.setattr(models, "MODELS", copy.deepcopy(models.MODELS))

    @register_model("test-tiny")
    def tiny(vocab_sizes, num_numeric=0, config=None):
        return build_base_model(vocab_sizes, num_numeric, ModelConfig(embed_dim=1, hidden=()))

    assert get_model("test-tiny") is tiny
    assert get_model("test-tiny")([2])(torch.tensor([[1]]), torch.zeros(1, 0)).shape == (1,)
    with pytest.raises(ValueError, match="already registered"):
        register_model("test-tiny")(tiny)


def brute_force_fm(first_order: torch.Tensor, offsets: torch.Tensor, cat: torch.Tensor,
                   embedded: torch.Tensor) -> torch.Tensor:
    """An FM's terms by the definition: the first-order weights, then a loop over field pairs."""
    out = []
    for b in range(cat.shape[0]):
        value = sum(first_order[offsets[f] + cat[b, f], 0] for f in range(cat.shape[1]))
        for f in range(cat.shape[1]):
            for g in range(f + 1, cat.shape[1]):
                value = value + embedded[b, f] @ embedded[b, g]
        out.append(value)
    return torch.stack(out)


def test_fm_term_is_first_order_weights_plus_pairwise_inner_products():
    fm = models.FMTerm([3, 4, 2])
    assert fm.first_order.table.weight.abs().sum() == 0  # starts as the pairwise term alone
    cat = torch.tensor([[1, 2, 0], [0, 3, 1]])
    embedded = torch.tensor([[[1., 2.], [3., 4.], [-1., 0.5]],
                             [[0., 1.], [2., -2.], [1., 1.]]])
    # Row 0: <1,2>.<3,4> + <1,2>.<-1,.5> + <3,4>.<-1,.5> = 11 + 0 - 1 = 10; row 1: -2 + 1 + 0.
    assert fm(cat, embedded).tolist() == [10.0, -1.0]
    with torch.no_grad():
        fm.first_order.table.weight.copy_(torch.arange(9.0).unsqueeze(1))
    torch.testing.assert_close(fm(cat, embedded), brute_force_fm(
        fm.first_order.table.weight, fm.first_order.offsets, cat, embedded))
    # Rows 1 + 5 + 7 and 0 + 6 + 8 of the first-order table.
    assert fm(cat, embedded).tolist() == [10.0 + 13.0, -1.0 + 14.0]


def test_fm_config_adds_the_term_on_the_models_own_embeddings():
    torch.manual_seed(0)
    config = ModelConfig(embed_dim=2, hidden=(5, 3), fm=True)
    model = build_base_model([3, 4], num_numeric=1, config=config)
    with torch.no_grad():
        model.fm.first_order.table.weight.normal_()
    cat, num = torch.tensor([[1, 2], [0, 3]]), torch.tensor([[0.5], [-1.0]])
    deep = model.head(model.mlp(model.mlp_input(cat, num)))
    fm = brute_force_fm(model.fm.first_order.table.weight, model.embedding.offsets, cat,
                        model.embedding(cat))
    torch.testing.assert_close(model(cat, num), deep + fm)
    torch.testing.assert_close(model.forward_hidden(cat, num).logits, deep + fm)
    assert build_base_model([3, 4], 1, ModelConfig(embed_dim=2, hidden=(5, 3))).fm is None
    # The embeddings get gradient through both parts; the first-order weights stay sparse.
    model(cat, num).sum().backward()
    assert model.fm.first_order.table.weight.grad.is_sparse
    assert sorted(model.fm.first_order.table.weight.grad.coalesce().indices()[0].tolist()) == [
        0, 1, 5, 6]
