"""Domain classifier: out-of-fold scores, AUC as domain distance, weights and masks."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import ThreadpoolController, threadpool_limits

from graphsel.data.log import InteractionLog, share_index
from graphsel.errors import InputError
from graphsel.graph.embed import svd_factors
from graphsel.select import domain
from graphsel.select.domain import MAX_CATEGORIES, DomainClassifier, domain_features


def _log(rng, n, users, items, name, price_shift=0.0, cities=("a", "b", "c")):
    return InteractionLog.from_columns(
        rng.choice(users, n), rng.choice(items, n), np.zeros(n, dtype=np.int64),
        rng.integers(0, 2, n), name, name=name,
        city=rng.choice(np.array(cities), n), price=rng.normal(price_shift, 1.0, n))


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Small fits are fastest single-threaded, and other test processes share the cores."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def identical():
    """Candidates and target drawn from one distribution: nothing tells them apart."""
    rng = np.random.default_rng(0)
    return share_index(_log(rng, 1_000, np.arange(150), np.arange(80), "source"),
                       _log(rng, 250, np.arange(150), np.arange(80), "target"))


@pytest.fixture(scope="module")
def separable():
    """Target on its own users, items, cities and prices: trivially told apart."""
    rng = np.random.default_rng(1)
    return share_index(
        _log(rng, 1_000, np.arange(150), np.arange(80), "source"),
        _log(rng, 250, np.arange(150, 200), np.arange(80, 100), "target", price_shift=3.0,
             cities=("x", "y")))


@pytest.mark.parametrize("model", ["hgb", "logistic"])
def test_auc_is_chance_for_identical_domains(model, identical):
    classifier = DomainClassifier(model=model, max_iter=30).fit(*identical)
    assert 0.4 <= classifier.auc_ <= 0.6


@pytest.mark.parametrize("model", ["hgb", "logistic"])
def test_auc_is_near_one_for_separable_domains(model, separable):
    classifier = DomainClassifier(model=model, max_iter=30).fit(*separable)
    assert classifier.auc_ >= 0.95
    assert classifier.p_target_in_target_.mean() > 0.8 > 0.2 > classifier.p_target_.mean()


def test_graph_factors_enter_only_for_node_types_the_logs_share(identical, separable):
    # shared users and items: both factor blocks
    classifier = DomainClassifier(columns=[], embedding_dim=2, max_iter=30).fit(*identical)
    assert classifier.feature_names_ == ["user_svd_0", "user_svd_1", "item_svd_0",
                                         "item_svd_1"]
    # disjoint users and items: a factor would stand for a node of one domain only
    with pytest.raises(InputError, match="no domain features"):
        DomainClassifier(columns=[], max_iter=30).fit(*separable)
    # shared users, disjoint items (a genre as the target domain): user factors only
    rng = np.random.default_rng(3)
    source, target = share_index(_log(rng, 1_000, np.arange(150), np.arange(80), "source"),
                                 _log(rng, 250, np.arange(150), np.arange(80, 100), "target"))
    classifier = DomainClassifier(columns=[], embedding_dim=2, max_iter=30).fit(source, target)
    assert classifier.feature_names_ == ["user_svd_0", "user_svd_1"]


class _Spy(ClassifierMixin, BaseEstimator):
    """Records which rows (ids in column 0) every fitted copy trained on and scored."""

    fits: list[tuple[set[int], set[int]]] = []

    def fit(self, x, y):
        self.classes_ = np.array([0, 1])
        self.trained_ = set(x[:, 0].astype(int).tolist())
        return self

    def predict_proba(self, x):
        _Spy.fits.append((self.trained_, set(x[:, 0].astype(int).tolist())))
        return np.full((len(x), 2), 0.5)


def test_no_row_is_scored_by_a_model_that_saw_it():
    _Spy.fits.clear()
    n_cand, n_tgt = 90, 30
    rows = np.arange(n_cand + n_tgt, dtype=np.float32)[:, None]
    classifier = DomainClassifier(model=_Spy(), cv=3).fit_arrays(rows[:n_cand], rows[n_cand:])
    assert len(_Spy.fits) == 3
    scored = [row for _, test in _Spy.fits for row in test]
    assert sorted(scored) == list(range(n_cand + n_tgt))  # each row scored exactly once
    for trained, test in _Spy.fits:
        assert not trained & test
        assert trained | test == set(range(n_cand + n_tgt))
    # folds_ records the partition: every fold holds a stratified share of both classes.
    folds = classifier.folds_
    assert sorted(np.unique(folds).tolist()) == [0, 1, 2]
    assert np.bincount(folds[n_cand:]).tolist() == [10, 10, 10]
    assert np.bincount(folds[:n_cand]).tolist() == [30, 30, 30]


class _ThreadSpy(_Spy):
    """Records the OpenMP thread count each fold's fit runs under."""

    threads: ClassVar[list[int]] = []

    def fit(self, x, y):
        openmp = ThreadpoolController().select(user_api="openmp").info()
        _ThreadSpy.threads.append(openmp[0]["num_threads"] if openmp else 1)
        return super().fit(x, y)


def test_every_fold_thread_runs_under_the_openmp_limit():
    # libgomp keeps the thread count per calling thread: a limit set around the pool only
    # would leave the fold threads spinning with the library's default
    _ThreadSpy.threads.clear()
    rows = np.arange(40, dtype=np.float32)[:, None]
    DomainClassifier(model=_ThreadSpy(), cv=4, n_threads=1, n_jobs=2).fit_arrays(rows[:30],
                                                                                rows[30:])
    assert _ThreadSpy.threads == [1, 1, 1, 1]


def test_memorising_model_gets_no_credit_out_of_fold():
    """A 1-nearest-neighbour model on unique noise would score AUC 1.0 in-sample."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1_200, 4))
    y = np.r_[np.zeros(1_000), np.ones(200)]
    in_sample = KNeighborsClassifier(1).fit(x, y).predict_proba(x)[:, 1]
    assert roc_auc_score(y, in_sample) == 1.0
    classifier = DomainClassifier(model=KNeighborsClassifier(1)).fit_arrays(x[:1_000], x[1_000:])
    assert classifier.auc_ < 0.6


def test_weight_is_clipped_density_ratio(separable):
    classifier = DomainClassifier(max_iter=30, weight_clip=(0.1, 5.0)).fit(*separable)
    p = classifier.p_target_
    ratio = len(separable[0]) / len(separable[1])
    with np.errstate(divide="ignore"):
        expected = np.clip(p / (1 - p) * ratio, 0.1, 5.0)
    np.testing.assert_allclose(classifier.weight_, expected)
    assert classifier.weight_.min() >= 0.1 and classifier.weight_.max() <= 5.0


@pytest.mark.parametrize("rule, kept", [({"budget": 7}, 7), ({"keep_quantile": 0.25}, 250)])
def test_selection_rules_count(rule, kept, identical):
    classifier = DomainClassifier(max_iter=10, **rule).fit(*identical)
    mask = classifier.get_support()
    assert mask.shape == (1_000,) and mask.sum() == kept
    assert classifier.p_target_[mask].min() >= classifier.p_target_[~mask].max()
    assert len(classifier.transform(identical[0])) == kept


def test_threshold_rule_and_determinism(identical):
    first = DomainClassifier(max_iter=10, threshold=0.17).fit(*identical)
    np.testing.assert_array_equal(first.get_support(), first.p_target_ >= 0.17)
    second = clone(first).fit(*identical)
    np.testing.assert_array_equal(first.p_target_, second.p_target_)


@pytest.mark.parametrize("params, message", [
    ({"model": "xgb"}, r"Could not resolve model 'xgb' among \['hgb', 'logistic'\]"),
    ({"normalize": "l1"}, "Could not resolve normalize 'l1'"),
    ({"cv": 1}, "cv must be an integer >= 2"),
    ({"max_train_target": 0}, "max_train_target must be an integer >= 1"),
    ({"learning_rate": 0.0}, r"learning_rate must be a number in \(0.0, 1.0\], got 0.0"),
    ({"weight_clip": (5.0, 1.0)}, r"weight_clip must be a \(low, high\) pair with 0 < low"),
    ({"weight_clip": 3}, r"weight_clip must be a \(low, high\) pair"),
    ({"weight_clip": (0.0, 1.0)}, r"weight_clip must be a \(low, high\) pair"),
    ({"threshold": 0.5, "budget": 2}, "at most one of"),
    ({"columns": ["domain"]}, "column 'domain' cannot be a domain feature: it is the answer"),
    ({"columns": ["nope"]}, "no column 'nope'"),
])
def test_bad_parameters_are_input_errors(params, message, identical):
    with pytest.raises(InputError, match=message):
        DomainClassifier(**params).fit(*identical)


def test_too_few_rows_for_the_folds(identical):
    source, target = identical
    with pytest.raises(InputError, match=r"da.cv 5 needs at least 5 target rows \(one per fold\), "
                                         r"got 3 \(valid: 2 to 3\)"):
        DomainClassifier().fit(source, target[:3])
    with pytest.raises(InputError, match="5-fold scoring needs at least 5 candidates"):
        DomainClassifier().fit_arrays(np.zeros((4, 2)), np.zeros((9, 2)))


def test_not_fitted():
    with pytest.raises(NotFittedError):
        DomainClassifier().get_support()


def test_features_share_categories_across_logs():
    first = InteractionLog.from_columns([1, 2, 3], [7, 7, 8], [0, 0, 0], [0, 1, 0], "s",
                                        city=["b", "a", "b"], price=[1.0, 2.0, 3.0])
    second = InteractionLog.from_columns([3, 4], [8, 9], [0, 0], [1, 1], "t",
                                         city=["a", "z"], price=[4.0, 5.0], extra=[1, 2])
    first, second = share_index(first, second)
    features = domain_features([first, second], shared_ids=True)
    assert features.names == ("city", "price", "user_id", "item_id")  # 'extra': one log only
    assert features.categorical.tolist() == [True, False, True, True]
    source_x, target_x = features.matrices
    # only city "a" is in both logs; "b" and "z" would say which log a row is from
    np.testing.assert_array_equal(source_x[:, 0], [np.nan, 0, np.nan])
    np.testing.assert_array_equal(target_x[:, 0], [0, np.nan])
    assert target_x[:, 1].tolist() == [4.0, 5.0]
    # only user 3 and item 8 appear on both sides; other ids are missing
    assert np.isnan(source_x[:2, 2]).all() and source_x[2, 2] == target_x[0, 2] == 0
    assert np.isnan(target_x[1, 2:]).all()


def test_a_column_that_defines_the_domain_is_left_out():
    # Taobao-style: the target domain is a set of categories the source does not have
    source = InteractionLog.from_columns([1, 2], [7, 8], [0, 0], [0, 1], "s",
                                         category=["c1", "c2"], price=[1.0, 2.0])
    target = InteractionLog.from_columns([1, 3], [9, 9], [0, 0], [1, 1], "t",
                                         category=["c9", "c9"], price=[3.0, 4.0])
    source, target = share_index(source, target)
    assert domain_features([source, target]).names == ("price",)
    # named explicitly, it stays (all missing)
    explicit = domain_features([source, target], ["category"])
    assert explicit.names == ("category",) and np.isnan(explicit.matrices[0]).all()


def test_rare_categories_beyond_the_cap_become_missing():
    n = MAX_CATEGORIES + 45
    values = [f"c{i}" for i in range(n)] + ["c0"] * 3
    log = InteractionLog.from_columns(np.arange(len(values)), np.zeros(len(values), dtype=int),
                                      np.zeros(len(values), dtype=int),
                                      np.zeros(len(values), dtype=int), "s", city=values)
    codes = domain_features([log]).matrices[0][:, 0]
    assert codes[0] == 0
    assert np.isnan(codes).sum() == 45 and np.nanmax(codes) == MAX_CATEGORIES - 1


def test_no_features_at_all_is_an_input_error(identical):
    with pytest.raises(InputError, match="no domain features"):
        DomainClassifier(columns=[], embedding_dim=0).fit(*identical)


def test_training_on_a_share_of_the_candidates_keeps_the_weights_calibrated():
    # identical domains: every density ratio is ~1 whether the folds see all candidates or 10%
    rng = np.random.default_rng(3)
    x_candidates, x_target = rng.normal(size=(4000, 3)), rng.normal(size=(400, 3))
    full = DomainClassifier("logistic", cv=4, keep_quantile=1.0).fit_arrays(x_candidates,
                                                                            x_target)
    drawn = DomainClassifier("logistic", cv=4, keep_quantile=1.0,
                             max_train_candidates=300).fit_arrays(x_candidates, x_target)
    assert np.median(full.weight_) == pytest.approx(1.0, abs=0.1)
    assert np.median(drawn.weight_) == pytest.approx(1.0, abs=0.15)
    assert np.isfinite(drawn.p_target_).all() and len(drawn.p_target_) == 4000


def test_training_on_a_share_of_the_target_rows_keeps_the_weights_calibrated():
    # identical domains, more target rows than candidates: the odds are rescaled by both
    # shares, so every density ratio stays ~1 when the folds see 10% of the target rows
    rng = np.random.default_rng(4)
    x_candidates, x_target = rng.normal(size=(800, 3)), rng.normal(size=(4000, 3))
    drawn = DomainClassifier("logistic", cv=4, keep_quantile=1.0,
                             max_train_target=300).fit_arrays(x_candidates, x_target)
    skewed = DomainClassifier("logistic", cv=4, keep_quantile=1.0, max_train_target=300)
    skewed.fold_plans = lambda y: [(f, train, 1.0, test) for f, train, _, test  # no rescale
                                   in DomainClassifier.fold_plans(drawn, y)]
    skewed.fit_arrays(x_candidates, x_target)
    assert np.median(drawn.weight_) == pytest.approx(1.0, abs=0.15)
    assert np.median(skewed.weight_) < 0.5  # what the rescaling corrects
    assert np.isfinite(drawn.p_target_in_target_).all() and len(drawn.p_target_in_target_) == 4000


def test_fold_plans_draw_each_side_up_to_its_cap():
    y = np.r_[np.zeros(100, np.int8), np.ones(40, np.int8)]
    stage = DomainClassifier(cv=4, max_train_candidates=30, max_train_target=20)
    for fold, train, odds_scale, test in stage.fold_plans(y):
        assert (y[train] == 0).sum() == 30 and (y[train] == 1).sum() == 20
        assert not np.isin(train, test).any() and (np.diff(train) > 0).all()
        assert odds_scale == pytest.approx((30 / 75) / (20 / 30))
    uncapped = DomainClassifier(cv=4, max_train_candidates=None, max_train_target=None)
    for fold, train, odds_scale, test in uncapped.fold_plans(y):
        assert len(train) == 105 and odds_scale == 1.0


def test_feature_kinds_follow_arrow_types_and_strings_are_encoded_by_arrow():
    """A string column is categorical (encoded without Python objects), a float column
    with a null numeric, a boolean one categorical."""
    source, target = share_index(
        InteractionLog.from_columns([1, 2, 3, 4], [1, 1, 2, 2], [0] * 4, [1, 0, 1, 0], "s",
                                    city=["a", "b", None, "a"], n=[1.0, None, 3.0, 4.0],
                                    flag=[True, False, True, True]),
        InteractionLog.from_columns([1, 5], [9, 9], [0, 0], [1, 1], "t", city=["a", "c"],
                                    n=[2.0, None], flag=[True, True]))
    features = domain_features([source, target])
    assert features.names == ("city", "n", "flag")
    assert features.categorical.tolist() == [True, False, True]
    nan = np.nan
    np.testing.assert_array_equal(features.matrices[0], np.array(
        [[0, 1, 0], [nan, nan, nan], [nan, 3, 0], [0, 4, 0]], dtype=np.float32))
    np.testing.assert_array_equal(features.matrices[1], np.array(
        [[0, 2, 0], [nan, nan, 0]], dtype=np.float32))


def test_a_column_numeric_in_one_log_only_is_refused_even_when_names_match():
    source, target = share_index(
        InteractionLog.from_columns([1, 2], [1, 1], [0, 0], [1, 0], "s", n=[1.5, None]),
        InteractionLog.from_columns([1], [9], [0], [1], "t", n=["2"]))  # both "<memory>"
    with pytest.raises(InputError, match=r"^column 'n' is numeric in some logs and categorical "
                                         r"in others \(<memory>: numeric, <memory>: "
                                         r"categorical\)$"):
        domain_features([source, target])


def test_an_integer_column_is_a_category_with_or_without_nulls():
    # ML-100K: the source has rows of unknown release year (null), the Horror target none
    source, target = share_index(
        InteractionLog.from_columns([1, 2, 3], [1, 1, 1], [0, 0, 0], [1, 0, 1], "s",
                                    year=[1995, None, 1990]),
        InteractionLog.from_columns([1, 2], [9, 9], [0, 0], [1, 0], "t", year=[1990, 1990]))
    features = domain_features([source, target])
    assert features.names == ("year",) and features.categorical.tolist() == [True]
    # 1990 is the one value both logs share (code 0); 1995 and the null get none
    np.testing.assert_array_equal(features.matrices[0][:, 0], [np.nan, np.nan, 0])
    np.testing.assert_array_equal(features.matrices[1][:, 0], [0, 0])


def test_predictions_in_blocks_on_threads_equal_one_thread(monkeypatch):
    # the fits run first and the fold's blocks after, on whichever thread is free: the
    # scores must not depend on the schedule
    rng = np.random.default_rng(5)
    x_candidates = rng.normal(size=(700, 3)).astype(np.float32)
    x_target = (rng.normal(size=(120, 3)) + 0.5).astype(np.float32)
    monkeypatch.setattr(domain, "_PREDICT_BLOCK", 37)
    one = DomainClassifier(cv=3, max_train_candidates=300, n_jobs=1).fit_arrays(
        x_candidates, x_target)
    three = DomainClassifier(cv=3, max_train_candidates=300, n_jobs=3).fit_arrays(
        x_candidates, x_target)
    np.testing.assert_array_equal(three.p_target_, one.p_target_)
    np.testing.assert_array_equal(three.p_target_in_target_, one.p_target_in_target_)
    np.testing.assert_array_equal(three.folds_, one.folds_)
    assert 0.6 < one.auc_ < 1.0


def _with_repeats(rng, n_rows, n_distinct, width):
    """``n_rows`` rows drawn from ``n_distinct`` float32 rows, one of them with a NaN."""
    pool = rng.normal(size=(n_distinct, width)).astype(np.float32)
    pool[0, 1] = np.nan
    return pool[rng.integers(0, n_distinct, n_rows)]


def test_distinct_rows_groups_equal_rows_only(monkeypatch):
    rng = np.random.default_rng(3)
    monkeypatch.setattr(domain, "_ROW_BLOCK", 7)  # groups checked across several blocks
    first_part, second_part = _with_repeats(rng, 60, 9, 3), _with_repeats(rng, 25, 9, 3)
    groups, first = domain.distinct_rows([first_part, second_part])
    rows = np.vstack([first_part, second_part])
    # the oracle: rows are equal (NaN equal to NaN) exactly when their groups are
    same = (rows[:, None, :] == rows[None, :, :]) | (np.isnan(rows[:, None, :])
                                                       & np.isnan(rows[None, :, :]))
    np.testing.assert_array_equal(groups[:, None] == groups[None, :], same.all(axis=2))
    np.testing.assert_array_equal(first, [np.flatnonzero(groups == g)[0]
                                          for g in range(len(first))])
    assert (np.diff(first) > 0).all()  # groups numbered in order of first appearance


def test_distinct_rows_never_merges_rows_whose_hashes_collide(monkeypatch):
    rows = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    monkeypatch.setattr(domain, "_row_hashes", lambda matrices, bits: np.zeros(3))
    groups, first = domain.distinct_rows([rows])
    assert groups.tolist() == [0, 1, 2] and first.tolist() == [0, 1, 2]


def test_distinct_rows_leaves_rows_that_hardly_repeat_alone():
    some = np.array([[1.0], [2.0], [3.0], [3.0], [4.0], [5.0]], dtype=np.float32)
    groups, first = domain.distinct_rows([some])  # 1 repeat in 6 rows: grouped
    assert groups.tolist() == [0, 1, 2, 2, 3, 4] and first.tolist() == [0, 1, 2, 4, 5]
    few = np.arange(40, dtype=np.float32)[:, None]
    few[1] = few[0]  # 1 repeat in 40 rows: under 5 %, left alone
    groups, first = domain.distinct_rows([few])
    assert groups.tolist() == first.tolist() == list(range(40))


def test_repeated_rows_are_scored_once_per_fold_with_the_same_scores(monkeypatch):
    # a fold scores each distinct row it tests once and hands the score to its repeats:
    # the scores are those of scoring every row
    rng = np.random.default_rng(4)
    x_candidates = _with_repeats(rng, 900, 40, 3)
    x_target = _with_repeats(rng, 150, 40, 3) + np.float32(0.4)
    grouped = DomainClassifier(cv=3, max_train_candidates=300).fit_arrays(x_candidates,
                                                                         x_target)
    monkeypatch.setattr(domain, "_MIN_REPEATS", 1.01)  # every row its own group
    every_row = DomainClassifier(cv=3, max_train_candidates=300).fit_arrays(x_candidates,
                                                                           x_target)
    np.testing.assert_array_equal(grouped.p_target_, every_row.p_target_)
    np.testing.assert_array_equal(grouped.p_target_in_target_, every_row.p_target_in_target_)
    assert grouped.auc_ == every_row.auc_


class _CallSpy(_Spy):
    """Also records every row value each ``predict_proba`` call was asked about."""

    calls: ClassVar[list[list[float]]] = []

    def predict_proba(self, x):
        _CallSpy.calls.append(x[:, 0].tolist())
        return super().predict_proba(x)


def test_each_fold_scores_a_distinct_row_once():
    _Spy.fits.clear()
    _CallSpy.calls.clear()
    rows = np.repeat(np.arange(40, dtype=np.float32), 3)[:, None]  # every row three times
    classifier = DomainClassifier(model=_CallSpy(), cv=3, n_jobs=1).fit_arrays(rows[:90],
                                                                              rows[90:])
    assert len(_CallSpy.calls) == 3  # one block per fold, in fold order (one thread)
    for fold, call in enumerate(_CallSpy.calls):
        assert len(call) == len(set(call))  # no row value asked twice
        assert set(call) == set(rows[classifier.folds_ == fold, 0].tolist())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_domain_auc_is_roc_auc_score_with_ties_and_counts(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(domain, "_ROW_BLOCK", 64)  # candidates in several blocks
    # scores on a coarse grid: many ties within and across the two sides
    p_candidates = rng.integers(0, 20, 500) / 20
    p_target = rng.integers(5, 25, 70) / 25
    y = np.r_[np.zeros(500), np.ones(70)]
    expected = roc_auc_score(y, np.r_[p_candidates, p_target])
    assert domain.domain_auc(p_candidates, p_target) == pytest.approx(expected, abs=1e-12)
    # the same candidates as distinct values and their counts (the Spark engine's histogram)
    values, counts = np.unique(p_candidates, return_counts=True)
    assert domain.domain_auc(values, p_target, counts) == pytest.approx(expected, abs=1e-12)


def test_feature_rows_are_the_parts_taken_at_each_row(identical):
    source, target = identical
    factors = np.arange(2 * source.index.num_users, dtype=np.float32).reshape(-1, 2)
    features = domain_features([source, target], user_factors=factors)
    rows = features.rows[0]
    whole = np.asarray(rows)
    assert whole.shape == rows.shape == (len(source), len(features.names)) == (1_000, 4)
    assert features.names == ("city", "price", "user_svd_0", "user_svd_1")
    np.testing.assert_array_equal(whole[:, 2:], factors[source.user])  # taken at the users
    np.testing.assert_array_equal(whole[:, 1], source.column("price").astype(np.float32))
    picked = np.array([999, 3, 3, 0])
    np.testing.assert_array_equal(rows[picked], whole[picked])
    np.testing.assert_array_equal(rows[10:20], whole[10:20])
    np.testing.assert_array_equal(features.matrices[1], np.asarray(features.rows[1]))


def test_a_missing_category_is_the_last_row_of_its_codes():
    # a null is code -1 of pd.factorize: the part's last row, NaN
    rows = domain.FeatureRows([(np.array([[0.0], [1.0], [np.nan]], dtype=np.float32),
                                np.array([1, -1, 0]))], 3)
    np.testing.assert_array_equal(np.asarray(rows).ravel(), [1.0, np.nan, 0.0])


def test_fit_on_logs_equals_fit_on_the_whole_matrices(identical):
    source, target = identical
    factors = svd_factors([source, target], dim=3)
    on_logs = DomainClassifier(cv=3, embedding_dim=3).fit(source, target, user_factors=factors[0],
                                                         item_factors=factors[1])
    features = domain_features([source, target], user_factors=factors[0],
                               item_factors=factors[1])
    on_arrays = DomainClassifier(cv=3).fit_arrays(*features.matrices, features.categorical)
    np.testing.assert_array_equal(on_logs.p_target_, on_arrays.p_target_)
    assert on_logs.auc_ == on_arrays.auc_
