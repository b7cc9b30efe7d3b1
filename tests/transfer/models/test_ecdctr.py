"""E-CDCTR: id-aligned long-term embedding features, CPM initialisation, BN reset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphsel.errors import InputError
from graphsel.transfer.data import CTRDataset
from graphsel.transfer.features import CategoricalField, FeatureSpec
from graphsel.transfer.models import ecdctr as ecdctr_module
from graphsel.transfer.models.base import ModelConfig, build_base_model, get_model
from graphsel.transfer.models.ecdctr import (
    EntityEmbeddings,
    TinyPretrainModel,
    add_embedding_features,
    aggregate_periods,
    build_tiny_pretrain_model,
    init_from,
    reset_batchnorm,
)
from graphsel.transfer.train.trainer import TrainConfig, Trainer
from tests.transfer.tiny import TINY_BN, tiny_dataset

torch.set_num_threads(1)


def _dataset(n: int = 32, seed: int = 0, num_numeric: int = 1) -> CTRDataset:
    return tiny_dataset(n, seed, vocab=(4, 3), num_numeric=num_numeric)


ONE_EPOCH = TrainConfig(epochs=1, batch_size=8, lr=0.05, progress=False)


# -- long-term embedding features -------------------------------------------------------------


def test_tpm_is_a_biased_dot_product_of_the_user_and_item_rows():
    torch.manual_seed(0)
    model = TinyPretrainModel(4, 3, embed_dim=2, user_field=1, item_field=0)
    cat = torch.tensor([[2, 3], [0, 1]])  # column 1 is the user here
    table = model.embedding.table.weight
    with torch.no_grad():
        model.bias.fill_(0.5)
    expected = torch.stack([table[3] @ table[4 + 2], table[1] @ table[4 + 0]]) + 0.5
    torch.testing.assert_close(model(cat, torch.zeros(2, 0)), expected)


def test_tpm_embeddings_are_keyed_by_the_encoders_ids():
    torch.manual_seed(0)
    spec = FeatureSpec((CategoricalField("user_id", np.array([10, 20, 30])),
                        CategoricalField("item_id", np.array([7, 9]))), ())
    model = TinyPretrainModel(4, 3, embed_dim=2)
    users, items = model.user_item_embeddings(spec)
    table = model.embedding.table.weight.detach().numpy()
    assert users.ids.tolist() == [10, 20, 30] and items.ids.tolist() == [7, 9]
    # local index j + 1 is categories[j]; row 0 of each field is its OOV bucket
    np.testing.assert_array_equal(users.lookup(np.array([20])), table[[2]])
    np.testing.assert_array_equal(items.lookup(np.array([9, 7])), table[[4 + 2, 4 + 1]])
    before = users.vectors.copy()
    with torch.no_grad():
        model.embedding.table.weight.add_(1.0)  # training on: a past period must not move
    np.testing.assert_array_equal(users.vectors, before)
    with pytest.raises(InputError, match="'user_id' has 4 rows in the spec, 5 in the model"):
        TinyPretrainModel(5, 3).user_item_embeddings(spec)


def test_aggregate_periods_averages_each_id_over_the_periods_it_appears_in():
    first = EntityEmbeddings(np.array([3, 1]), np.array([[1.0, 1.0], [2.0, 0.0]]))
    second = EntityEmbeddings(np.array([1, 5]), np.array([[4.0, 2.0], [7.0, 7.0]]))
    mean = aggregate_periods([first, second])
    assert mean.ids.tolist() == [1, 3, 5]
    np.testing.assert_allclose(mean.vectors, [[3.0, 1.0], [1.0, 1.0], [7.0, 7.0]])
    with pytest.raises(InputError, match="different embedding sizes"):
        aggregate_periods([first, EntityEmbeddings(np.array([1]), np.ones((1, 3)))])


def test_embedding_features_line_up_with_each_rows_user_and_item():
    users = EntityEmbeddings(np.array([30, 10, 20]), np.array([[3.0], [1.0], [2.0]]))
    items = EntityEmbeddings(np.array(["b", "a"]), np.array([[0.0, -2.0], [0.0, -1.0]]))
    data = CTRDataset(np.array([[1, 1], [2, 2], [3, 1]]), np.array([[0.5], [0.6], [0.7]]),
                      np.array([1, 0, 1]), np.array([1.0, 2.0, 3.0]))
    out = add_embedding_features(data, np.array([20, 99, 30]), np.array(["a", "b", "zz"]),
                                 users, items)
    np.testing.assert_allclose(out.num.numpy(), [[0.5, 2.0, 0.0, -1.0],
                                                 [0.6, 0.0, 0.0, -2.0],   # unknown user
                                                 [0.7, 3.0, 0.0, 0.0]])  # unknown item
    assert torch.equal(out.cat, data.cat) and torch.equal(out.label, data.label)
    assert torch.equal(out.weight, data.weight)
    with pytest.raises(InputError, match="user_ids has 2 entries, data has 3 rows"):
        add_embedding_features(data, np.array([1, 2]), np.array([1, 2, 3]), users, items)


def test_entity_embeddings_validate():
    with pytest.raises(InputError, match="distinct"):
        EntityEmbeddings(np.array([1, 1]), np.zeros((2, 2)))
    with pytest.raises(InputError, match="ids must be"):
        EntityEmbeddings(np.array([1, 2]), np.zeros((3, 2)))


def test_tpm_trains_with_the_trainer_and_is_registered():
    assert get_model("ecdctr_tpm") is build_tiny_pretrain_model
    model = build_tiny_pretrain_model([4, 3, 2], config=ModelConfig(embed_dim=2))
    before = model.embedding.table.weight.detach().clone()
    Trainer(ONE_EPOCH).fit(model, _dataset())
    assert not torch.equal(before, model.embedding.table.weight)
    with pytest.raises(InputError, match="needs user and item fields"):
        build_tiny_pretrain_model([4])


# -- complete pre-training model --------------------------------------------------------------


def test_init_from_copies_the_matching_tensors_only():
    torch.manual_seed(0)
    pretrained = build_base_model([4, 3], 2, TINY_BN)  # one more numeric feature
    with torch.no_grad():
        pretrained.mlp.layers[1].norm.running_mean.fill_(0.3)
    torch.manual_seed(1)
    target = build_base_model([4, 3], 1, TINY_BN)
    first_layer = target.mlp.layers[0].linear.weight.detach().clone()
    copied = init_from(pretrained, target)
    source_state, target_state = pretrained.state_dict(), target.state_dict()
    expected = sorted(name for name in target_state
                      if name not in ("embedding.offsets", "mlp.layers.0.linear.weight"))
    assert copied == expected
    assert all(torch.equal(target_state[name], source_state[name]) for name in copied)
    assert torch.equal(target.mlp.layers[0].linear.weight, first_layer)  # (8, 9) vs (8, 8)


def test_init_from_never_copies_a_table_of_another_layout():
    torch.manual_seed(0)
    pretrained = build_base_model([3, 4], 1, TINY_BN)
    torch.manual_seed(1)
    target = build_base_model([4, 3], 1, TINY_BN)  # same table shape, rows mean other values
    table = target.embedding.table.weight.detach().clone()
    copied = init_from(pretrained, target)
    assert "embedding.table.weight" not in copied and "embedding.offsets" not in copied
    assert torch.equal(target.embedding.table.weight, table)
    assert target.embedding.offsets.tolist() == [0, 4]
    assert "mlp.layers.0.linear.weight" in copied


# -- batch-norm re-initialisation -------------------------------------------------------------


@pytest.mark.parametrize("affine", [False, True])
def test_reset_batchnorm_restores_the_initial_running_statistics(affine):
    torch.manual_seed(0)
    model = build_base_model([4, 3], 1, TINY_BN)
    Trainer(ONE_EPOCH).fit(model, _dataset())
    norms = [layer.norm for layer in model.mlp.layers]
    assert all(norm.num_batches_tracked.item() > 0 for norm in norms)  # training moved them
    assert all(norm.running_mean.abs().sum() > 0 for norm in norms)
    scale = norms[0].weight.detach().clone()
    assert not torch.equal(scale, torch.ones_like(scale))
    linear = model.mlp.layers[0].linear.weight.detach().clone()

    assert reset_batchnorm(model, affine=affine) == 2
    for norm in norms:
        assert torch.equal(norm.running_mean, torch.zeros_like(norm.running_mean))
        assert torch.equal(norm.running_var, torch.ones_like(norm.running_var))
        assert norm.num_batches_tracked.item() == 0
    if affine:
        assert torch.equal(norms[0].weight, torch.ones_like(scale))
        assert torch.equal(norms[0].bias, torch.zeros_like(scale))
    else:
        assert torch.equal(norms[0].weight, scale)
    assert torch.equal(model.mlp.layers[0].linear.weight, linear)


def test_doctests():
    import doctest

    assert doctest.testmod(ecdctr_module).failed == 0
