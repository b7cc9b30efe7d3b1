"""InteractionLog, IdIndex, reading and writing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphsel import (
    IdIndex,
    InputError,
    InteractionLog,
    read_log,
    read_pair,
    share_index,
    write_log,
)
from graphsel.data.log import Overlap, compact_strings, decode_strings, overlap


def _source() -> InteractionLog:
    return InteractionLog.from_columns(
        ["u1", "u2", "u1", "u3"], ["i1", "i1", "i2", "i3"], [10, 20, 30, 40], [1, 0, 1, 1],
        "source", behavior=["click", "impression", "purchase", "click"],
        city=["a", "b", "a", "c"], price=[1.0, 2.0, 3.0, 4.0], name="source")


def _target() -> InteractionLog:
    return InteractionLog.from_columns(
        ["u9", "u3"], ["i3", "i7"], [50, 60], [0, 1], "target", name="target")


def test_codes_follow_first_appearance():
    log = _source()
    assert log.user.tolist() == [0, 1, 0, 2]
    assert log.item.tolist() == [0, 0, 1, 2]
    assert log.index.users.tolist() == ["u1", "u2", "u3"]
    assert log.user_id.tolist() == ["u1", "u2", "u1", "u3"]
    assert log.feature_columns == ["city", "price"]
    assert log.has_behavior


def test_index_lookup_of_unknown_ids_is_minus_one():
    index = IdIndex.from_ids(np.array([5, 7]), np.array(["a"]))
    assert index.user_codes([7, 5, 6]).tolist() == [1, 0, -1]
    assert index.item_codes(["b", "a"]).tolist() == [-1, 0]
    assert index.user_codes(["5"]).tolist() == [-1]  # a string is not the integer 5


def test_arrays_are_read_only():
    log = _source()
    with pytest.raises(ValueError):
        log.user[0] = 5
    with pytest.raises(ValueError):
        log.label[0] = 0


def test_mask_and_index_slicing_agree():
    log = _source()
    by_mask = log[np.array([True, False, False, True])]
    by_rows = log[[0, 3]]
    for part in (by_mask, by_rows):
        assert part.user_id.tolist() == ["u1", "u3"]
        assert part.ts.tolist() == [10, 40]
        assert part.column("city").tolist() == ["a", "c"]
        assert part.index is log.index
    assert len(log[2:]) == 2



def test_a_slice_of_a_slice_takes_its_rows_from_the_table_read():
    log = _source()
    part = log[[3, 2, 0]][np.array([False, True, True])]  # rows 2 and 0 of the log
    assert part.base_table is log.table  # no column was copied to slice
    assert part.base_rows.tolist() == [2, 0]
    # each way of reading a column agrees with taking the rows from the table
    taken = log.table.take(pa.array([2, 0]))
    assert part.arrow_column("city").to_pylist() == ["a", "a"]
    assert part.column("price").tolist() == [3.0, 1.0]
    assert part.factorize("behavior")[1].tolist() == ["purchase", "click"]
    assert part.table.equals(taken)
    assert part.arrow_column("behavior").to_pylist() == ["purchase", "click"]
    assert part.schema.equals(log.table.schema)
    assert part[[1]].table.equals(log.table.take(pa.array([0])))
    with pytest.raises(InputError, match="source: no column 'zip'"):
        part.arrow_column("zip")

def test_wrong_mask_length_is_an_input_error():
    with pytest.raises(InputError, match=r"mask has shape \(2,\), expected \(4,\)"):
        _source()[np.array([True, False])]


def test_codes_of_a_categorical_column_are_sorted():
    codes, categories = _source().codes("behavior")
    assert categories.tolist() == ["click", "impression", "purchase"]
    assert codes.tolist() == [0, 1, 2, 0]


def test_share_index_puts_source_first_and_aligns_codes():
    source, target = share_index(_source(), _target())
    assert source.index is target.index
    assert source.index.users.tolist() == ["u1", "u2", "u3", "u9"]
    assert target.user.tolist() == [3, 2]
    assert target.item.tolist() == [2, 3]
    assert overlap(source, target) == Overlap(users=1, items=1)


def test_read_pair_rejects_disjoint_logs():
    other = InteractionLog.from_columns(["x"], ["y"], [1], [1], "target", name="other")
    with pytest.raises(InputError, match="no user and no item shared between source and other"):
        read_pair(_source(), other)


def test_write_then_read_round_trips(tmp_path):
    path = write_log(_source(), tmp_path / "s.parquet")
    log = read_log(path)
    assert log.table.equals(_source().table)
    assert log.name == str(path)


def test_csv_and_tsv_read_like_parquet(tmp_path):
    csv = tmp_path / "log.csv"
    csv.write_text("user_id,item_id,ts,label,domain,behavior\n1,a,5,1,t,click\n2,b,6,0,t,impression\n")
    tsv = tmp_path / "log.tsv"
    tsv.write_text(csv.read_text().replace(",", "\t"))
    for path in (csv, tsv):
        log = read_log(path)
        assert log.index.users.tolist() == [1, 2]
        assert log.item_id.tolist() == ["a", "b"]
        assert log.ts.dtype == np.int64 and log.label.dtype == np.int8


def test_write_failure_leaves_no_file(tmp_path):
    target = tmp_path / "out.parquet"

    with pytest.raises(AttributeError):  # a string is no table: fails inside the write
        write_log("not a table", target)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_write_replaces_atomically(tmp_path):
    target = tmp_path / "out.parquet"
    write_log(_source(), target)
    write_log(_target(), target)
    assert pq.read_table(target).num_rows == 2
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_dictionary_encoded_ids_are_accepted(tmp_path):
    table = _source().table
    table = table.set_column(0, "user_id", table.column("user_id").dictionary_encode())
    pq.write_table(table, tmp_path / "d.parquet")
    assert read_log(tmp_path / "d.parquet").user_id.tolist() == ["u1", "u2", "u1", "u3"]


def test_boolean_label_is_accepted():
    log = InteractionLog.from_columns([1], [2], [3], pa.array([True]), "s")
    assert log.label.tolist() == [1]


def test_written_files_get_the_usual_mode(tmp_path):
    import os
    import stat

    path = write_log(_source(), tmp_path / "out.parquet")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_overlap_of_logs_that_share_nothing_is_false_and_zero():
    other = InteractionLog.from_columns(["x"], ["y"], [1], [1], "target", name="other")
    shared = overlap(_source(), other)
    assert shared == Overlap(users=0, items=0) and not shared
    assert shared.to_json() == {"users": 0, "items": 0}


@pytest.mark.parametrize("ids", [
    [["u3", "u1"], ["u3", "u2", "u1"], ["u9"]],   # strings in several chunks
    [[7, 5, 7], [], [9, 5]],                      # integers, an empty chunk between
])
def test_id_codes_match_the_pandas_oracle(ids):
    """Arrow's dictionary encoding (no Python object per row) gives the codes and the
    first-appearance index that pandas.unique / get_indexer give on every row."""
    column = pa.chunked_array(ids, type=pa.string() if isinstance(ids[0][0], str)
                              else pa.int64())
    n = len(column)
    table = pa.table({"user_id": column, "item_id": column, "ts": pa.array(range(n)),
                      "label": pa.array([1] * n), "domain": pa.array(["s"] * n)})
    log = InteractionLog.from_table(table)
    flat = np.asarray(column.to_pylist(), dtype=object if isinstance(ids[0][0], str) else None)
    oracle = IdIndex.from_ids(flat, flat)
    assert log.index.users.tolist() == oracle.users.tolist()
    assert log.user.tolist() == oracle.user_codes(flat).tolist()
    assert log.item.tolist() == log.user.tolist()
    assert log.user.dtype == np.int64


def test_unknown_id_names_the_first_row_that_has_one():
    known = IdIndex.from_ids(np.array(["a", "b"]), np.array(["x"]))
    table = pa.table({"user_id": ["a", "c", "d"], "item_id": ["x"] * 3, "ts": [1, 2, 3],
                      "label": [1, 0, 1], "domain": ["s"] * 3})
    with pytest.raises(InputError, match=r"^t: column 'user_id' value 'c' is not in the id index$"):
        InteractionLog.from_table(table, name="t", index=known)


@pytest.mark.parametrize("values", [
    ["view", "buy", "view", "fav", "buy"],     # strings: sorted distinct values only
    ["b", None, "a", "b", None],               # a null: as np.unique sees it ('None')
    [3, 1, 3, 2, 1],
    [0.5, 0.1, 0.5, 0.2, 0.1],
    [True, False, True, True, False],
])
def test_codes_match_the_numpy_unique_oracle(values):
    log = InteractionLog.from_columns([1, 2, 3, 4, 5], [1] * 5, [0] * 5, [1] * 5, "s",
                                      feature=values)
    column = log.column("feature")
    categories, inverse = np.unique(column.astype(str) if column.dtype == object else column,
                                    return_inverse=True)
    codes, got = log.codes("feature")
    assert codes.dtype == np.int64 and codes.tolist() == inverse.tolist()
    assert got.dtype == categories.dtype and got.tolist() == categories.tolist()


def test_compact_strings_uses_the_narrowest_index_and_one_dictionary():
    many = [f"v{i}" for i in range(200)]
    few = pa.chunked_array([["b", "a"], [None, "b"]])
    many_column = pa.chunked_array([many[:150], many[150:]])
    coded = pa.chunked_array([pa.array(["x", "y"]).dictionary_encode(),
                              pa.array(["z", "x"]).dictionary_encode()])
    table = compact_strings(pa.table({"few": few, "coded": coded, "n": [1, 2, 3, 4]}))
    assert table.schema.field("few").type == pa.dictionary(pa.int8(), pa.string())
    assert table.column("few").to_pylist() == ["b", "a", None, "b"]
    assert table.column("coded").to_pylist() == ["x", "y", "z", "x"]
    assert table.column("n").type == pa.int64()
    for column in (table.column("few"), table.column("coded")):
        dictionaries = {tuple(chunk.dictionary.to_pylist()) for chunk in column.chunks}
        assert len(dictionaries) == 1
    wide = compact_strings(pa.table({"many": many_column}))
    assert wide.schema.field("many").type == pa.dictionary(pa.int16(), pa.string())
    assert wide.column("many").to_pylist() == many
    assert decode_strings(wide).equals(pa.table({"many": many_column}))


def test_a_log_holds_strings_encoded_and_writes_them_as_strings(tmp_path):
    table = _source().table
    plain = decode_strings(table)
    assert all(not pa.types.is_dictionary(field.type) for field in plain.schema)
    pq.write_table(plain, tmp_path / "in.parquet")
    log = read_log(tmp_path / "in.parquet")
    assert pa.types.is_dictionary(log.schema.field("city").type)
    assert log.column("city").tolist() == ["a", "b", "a", "c"]
    write_log(log[np.array([3, 0])], tmp_path / "out.parquet")
    written = pq.read_table(tmp_path / "out.parquet")
    assert written.schema == plain.schema
    assert written.equals(plain.take(pa.array([3, 0])))


def test_factorize_of_an_encoded_slice_matches_pandas():
    """A slice keeps the whole dictionary: only the values its rows use come back, in order of
    first appearance, nulls as -1 (what pandas.factorize gives on the values)."""
    values = ["c", None, "a", "c", "b", None, "a"]
    log = InteractionLog.from_columns(list(range(7)), [1] * 7, [0] * 7, [1] * 7, "s",
                                      feature=values)
    assert pa.types.is_dictionary(log.schema.field("feature").type)
    for rows in (np.arange(7), np.array([4, 1, 3, 2]), np.array([5, 6, 0])):
        codes, uniques = log[rows].factorize("feature")
        expected_codes, expected_uniques = pd.factorize(np.array(values, dtype=object)[rows])
        assert codes.tolist() == expected_codes.tolist()
        assert uniques.tolist() == expected_uniques.tolist()


@pytest.mark.parametrize(("size", "index"), [(128, pa.int8()), (129, pa.int16()),
                                             (32_768, pa.int16()), (32_769, pa.int32())])
def test_compact_strings_index_width_at_its_limits(size, index):
    values = [str(i) for i in range(size)]
    table = compact_strings(pa.table({"v": values}))
    assert table.schema.field("v").type.index_type == index
    assert table.column("v").to_pylist() == values
