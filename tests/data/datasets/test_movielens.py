"""MovieLens-1M split by genre: a tiny hand-built folder, then the real data's counts."""

from __future__ import annotations

import pytest

from graphsel.data.datasets import get_dataset, prepare
from graphsel.data.log import Overlap
from graphsel.errors import InputError
from tests.data.datasets.atomic import write_atomic, write_ml1m_folder

movielens = get_dataset("movielens-1m")

ITEMS = [
    ("item_id:token", "movie_title:token", "release_year:float", "genre:token"),
    ("Alpha (1990)", "Alpha", "1990", "Documentary Drama"),
    ("Beta, The (1991)", "Beta, The", "1991", "Comedy"),
    ('"Gamma" (1992)', '"Gamma"', "1992", "Drama Documentary"),
]
USERS = [
    ("user_id:token", "age:float", "gender:token", "occupation:float", "zip_code:token"),
    ("1m_1", "1", "F", "10", "48067"),
    ("1m_2", "56", "M", "16", "70072"),
]
INTER = [
    ("user_id:token", "item_id:token", "rating:float", "timestamp:float"),
    ("1m_1", "Alpha (1990)", "5", "100"),
    ("1m_1", "Beta, The (1991)", "3", "200"),
    ("1m_2", "Beta, The (1991)", "4", "300"),
    ("1m_2", '"Gamma" (1992)', "1", "400"),
    ("1m_1", '"Gamma" (1992)', "4", "500.0"),
]


@pytest.fixture
def folder(tmp_path):
    return write_ml1m_folder(tmp_path, ITEMS, USERS, INTER)


def _rows(log):
    columns = ["user_id", "item_id", "ts", "label", "behavior", "gender", "age", "occupation",
               "release_year", "genres", "first_genre"]
    return [tuple(row[c] for c in columns) for row in log.table.to_pylist()]


def test_target_is_the_genre_and_labels_follow_ratings(folder):
    source, target, truth = movielens(path=folder)
    assert truth is None
    assert _rows(target) == [
        ("1m_1", "Alpha (1990)", 100, 1, "love", "F", 1, 10, 1990, "Documentary Drama",
         "Documentary"),
        ("1m_2", '"Gamma" (1992)', 400, 0, "watch", "M", 56, 16, 1992, "Drama Documentary",
         "Drama"),
        ("1m_1", '"Gamma" (1992)', 500, 1, "watch", "F", 1, 10, 1992, "Drama Documentary",
         "Drama"),
    ]
    assert _rows(source) == [
        ("1m_1", "Beta, The (1991)", 200, 0, "watch", "F", 1, 10, 1991, "Comedy", "Comedy"),
        ("1m_2", "Beta, The (1991)", 300, 1, "watch", "M", 56, 16, 1991, "Comedy", "Comedy"),
    ]
    assert source.domains == ["source"] and target.domains == ["target"]
    assert source.index is target.index


def test_another_genre(folder):
    source, target, _ = movielens(path=folder, target_genre="Comedy")
    assert (len(source), len(target)) == (3, 2)


def test_unknown_genre_lists_the_genres(folder):
    with pytest.raises(InputError) as info:
        movielens(path=folder, target_genre="Horror")
    assert str(info.value) == ("Could not resolve genre 'Horror' among "
                               "['Comedy', 'Documentary', 'Drama']")


def test_missing_side_row_names_the_value(folder):
    write_atomic(folder / "ml-1m.inter.gz", INTER + [("1m_9", "Alpha (1990)", "4", "600")])
    with pytest.raises(InputError, match=r"column 'user_id' value '1m_9' has no row in "
                                         r".*ml-1m.user.gz"):
        movielens(path=folder)


def test_bad_rating_names_file_column_and_value(folder):
    write_atomic(folder / "ml-1m.inter.gz", INTER + [("1m_1", "Alpha (1990)", "five", "600")])
    with pytest.raises(InputError, match=r"ml-1m.inter.gz: column 'rating' has non-numeric "
                                         r"value 'five' at row 5"):
        movielens(path=folder)


def test_missing_column_names_the_file(folder):
    write_atomic(folder / "ml-1m.item.gz", [row[:3] for row in ITEMS])
    with pytest.raises(InputError, match=r"ml-1m.item.gz: missing column 'genre'"):
        movielens(path=folder)


def test_path_errors(tmp_path):
    with pytest.raises(InputError, match="'movielens-1m' needs option 'path'"):
        movielens()
    with pytest.raises(InputError, match=f"{tmp_path / 'nope'}: no such directory"):
        movielens(path=tmp_path / "nope")
    (tmp_path / "ml-1m.inter.gz").write_text("x")
    with pytest.raises(InputError, match=f"{tmp_path / 'ml-1m.inter.gz'}: is a file"):
        movielens(path=tmp_path / "ml-1m.inter.gz")
    with pytest.raises(InputError, match=f"{tmp_path / 'ml-1m.item.gz'}: no such file"):
        movielens(path=tmp_path)


GENRES = ["Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western"]


@pytest.mark.data
@pytest.mark.slow
def test_documentary_acceptance_counts(movielens_1m_path, tmp_path):
    card = prepare("movielens-1m", tmp_path, path=movielens_1m_path)
    source, target = card.source, card.target
    assert target is not None and source.behaviors and target.behaviors
    assert (target.rows, target.users, target.items) == (7_910, 2_243, 110)
    assert (source.rows, source.users) == (992_299, 6_040)
    assert card.shared == Overlap(users=2_243, items=0)
    assert source.behaviors["love"] + target.behaviors["love"] == 226_310
    assert source.features == ("gender", "age", "occupation", "release_year", "genres",
                               "first_genre")
    assert card.options == {"path": str(movielens_1m_path), "target_genre": "Documentary"}


@pytest.mark.data
def test_real_genres(movielens_1m_path):
    with pytest.raises(InputError) as info:
        movielens(path=movielens_1m_path, target_genre="Noir")
    assert str(info.value) == f"Could not resolve genre 'Noir' among {GENRES!r}"


@pytest.fixture
def movielens_100k_path():
    from tests.conftest import data_path

    return data_path("movielens-100k")


@pytest.mark.data
def test_ml100k_genre_split(movielens_100k_path):
    source, target, truth = get_dataset("movielens-100k")(path=movielens_100k_path)
    assert truth is None and (len(target), len(source)) == (5_317, 94_683)  # Horror
    assert target.table.schema.field("occupation").type.value_type == "string"  # names, not codes
    # the 18 duplicated titles count once; one unknown release year is null
    assert source.table.column("release_year").null_count > 0
    _, crime, _ = get_dataset("movielens-100k")(path=movielens_100k_path, target_genre="Crime")
    assert len(crime) == 8_055
