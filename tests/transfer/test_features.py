"""FeatureEncoder: vocabularies with an OOV bucket, offsets, standardisation, errors."""

from __future__ import annotations

import numpy as np
import pytest

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError
from graphsel.transfer.features import (
    DOMAIN_FIELD,
    OOV_INDEX,
    FeatureEncoder,
    domain_values,
    with_domain_field,
)


def _log(users, items, **features) -> InteractionLog:
    n = len(users)
    return InteractionLog.from_columns(users, items, list(range(n)), [i % 2 for i in range(n)],
                                       "target", **features)


@pytest.fixture
def train() -> InteractionLog:
    return _log([7, 7, 8], [1, 2, 1], city=["b", "a", "b"], age=[30, 20, 30],
                price=[1.0, 3.0, 5.0])


def test_default_columns_sizes_and_offsets(train):
    spec = FeatureEncoder().fit(train).spec_
    assert spec.categorical_names == ["user_id", "item_id", "city", "age"]
    assert spec.numeric_names == ["price"]
    # Each field: its distinct training values plus the OOV bucket.
    assert spec.vocab_sizes == (3, 3, 3, 3)
    assert spec.offsets.tolist() == [0, 3, 6, 9]
    assert spec.total_vocab == 12
    assert spec.categorical[2].categories.tolist() == ["a", "b"]


def test_transform_exact_values_with_unseen_and_missing(train):
    encoder = FeatureEncoder().fit(train)
    test = _log([8, 9, 7], [3, 1, 2], city=["a", None, "z"], age=[20, 31, 30],
                price=[3.0, float("nan"), 7.0])
    cat, num = encoder.transform(test)
    assert cat.dtype == np.int64 and num.dtype == np.float32
    # user 9, item 3, city None / "z" and age 31 were never seen in training: bucket 0.
    assert cat.tolist() == [[2, 0, 1, 1],
                            [0, 1, 0, 0],
                            [1, 2, 0, 2]]
    std = np.std([1.0, 3.0, 5.0])
    np.testing.assert_allclose(num[:, 0], [0.0, 0.0, 4.0 / std], rtol=1e-6)
    assert OOV_INDEX == 0


def test_training_rows_standardised_to_zero_mean_unit_std(train):
    _, num = FeatureEncoder().fit_transform(train)
    np.testing.assert_allclose([num[:, 0].mean(), num[:, 0].std()], [0.0, 1.0], atol=1e-6)


def test_constant_numeric_column_encodes_to_zero():
    log = _log([1, 2], [1, 1], price=[4.0, 4.0])
    _, num = FeatureEncoder().fit_transform(log)
    assert num.tolist() == [[0.0], [0.0]]


def test_encoding_follows_original_ids_not_index_codes(train):
    """A log read separately has its own IdIndex (other codes): same ids, same encoding."""
    encoder = FeatureEncoder(categorical=["user_id", "item_id"], numeric=[]).fit(train)
    other = _log([8, 7], [2, 1])  # user 8 gets code 0 in this log's own index
    assert other.user.tolist() == [0, 1]
    cat, num = encoder.transform(other)
    assert cat.tolist() == [[2, 2], [1, 1]]
    assert num.shape == (2, 0)


def test_string_ids():
    log = _log(["u1", "u2", "u1"], ["i9", "i8", "i8"])
    encoder = FeatureEncoder().fit(log)
    cat, _ = encoder.transform(_log(["u2", "u3"], ["i8", "i9"]))
    assert cat.tolist() == [[2, 1], [0, 2]]


def test_min_count_sends_rare_values_to_oov(train):
    encoder = FeatureEncoder(categorical=["user_id", "city"], numeric=[], min_count=2)
    cat, _ = encoder.fit_transform(train)
    assert encoder.spec_.vocab_sizes == (2, 2)
    assert cat.tolist() == [[1, 1], [1, 0], [0, 1]]


def test_explicit_columns_keep_their_order(train):
    encoder = FeatureEncoder(categorical=["city", "user_id"], numeric=["price"]).fit(train)
    cat, num = encoder.transform(train)
    assert cat.tolist() == [[2, 1], [1, 1], [2, 2]]
    assert num.shape == (3, 1)


@pytest.mark.parametrize("kwargs, message", [
    ({"categorical": ["label"]}, "cannot be a feature"),
    ({"categorical": ["domain"]}, "cannot be a feature"),
    ({"categorical": ["nope"]}, "no column 'nope'"),
    ({"categorical": ["price"]}, "not usable as categorical"),
    ({"numeric": ["city"]}, "not usable as numeric"),
    ({"categorical": ["city", "city"]}, "listed twice"),
    ({"min_count": 0}, "min_count"),
])
def test_bad_columns_are_one_line_input_errors(train, kwargs, message):
    with pytest.raises(InputError, match=message):
        FeatureEncoder(**kwargs).fit(train)


def test_transform_before_fit_and_missing_column(train):
    with pytest.raises(InputError, match="not fitted"):
        FeatureEncoder().transform(train)
    encoder = FeatureEncoder().fit(train)
    with pytest.raises(InputError, match="no column 'city'"):
        encoder.transform(_log([7], [1], age=[30], price=[1.0]))


def test_vectorised_on_many_rows_matches_dictionary_lookup():
    rng = np.random.default_rng(0)
    n = 20_000
    cities = np.array([f"c{i}" for i in rng.integers(0, 300, n)], dtype=object)
    log = _log(rng.integers(0, 1000, n), rng.integers(0, 500, n), city=cities)
    encoder = FeatureEncoder().fit(log[: n // 2])
    cat, _ = encoder.transform(log)
    for j, field in enumerate(encoder.spec_.categorical):
        lookup = {value: k + 1 for k, value in enumerate(field.categories.tolist())}
        values = {"user_id": log.user_id, "item_id": log.item_id}.get(field.name)
        values = log.column(field.name) if values is None else values
        expected = [lookup.get(v, 0) for v in values.tolist()]
        assert cat[:, j].tolist() == expected


def test_domain_field_is_a_normal_categorical_field():
    source = InteractionLog.from_columns([1, 2, 3], [1, 1, 2], [0, 1, 2], [0, 1, 1], "s",
                                         genre=["War", None, "Crime"])
    values = domain_values(source, "source", "genre").tolist()
    assert values == ["source:War", "source", "source:Crime"]
    marked = with_domain_field(source, domain_values(source, "source", "genre"))
    encoder = FeatureEncoder(["user_id", DOMAIN_FIELD]).fit(marked)
    spec = encoder.spec_
    assert spec.field_index(DOMAIN_FIELD) == 1
    cat, _ = encoder.transform(with_domain_field(source, "target"))
    assert (cat[:, 1] == OOV_INDEX).all() and spec.domain_index("target") == OOV_INDEX
    assert spec.domain_index("source:War") == 3  # sorted: source, source:Crime, source:War
    with pytest.raises(InputError, match="reserved for the domain feature"):
        with_domain_field(marked, "target")
    with pytest.raises(InputError, match="no categorical field 'nope'"):
        spec.field_index("nope")
