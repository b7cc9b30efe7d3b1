"""`graphsel validate`: every malformed-input case gives exit 2, one line naming the column,
and no output file."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from graphsel.cli import cli

GOOD = {
    "user_id": [1, 2, 3],
    "item_id": [10, 11, 10],
    "ts": [100, 200, 300],
    "label": [0, 1, 1],
    "domain": ["source"] * 3,
}


def _table(**changes) -> pa.Table:
    columns = {**GOOD, **changes}
    return pa.table({k: v for k, v in columns.items() if v is not None})


def _write(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


def _run(*args: str):
    return CliRunner().invoke(cli, ["validate", *args])


def _assert_bad(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert "\n" not in message, message
    assert message.startswith("error: ")
    for word in words:
        assert word in message, message


def _target(tmp_path: Path) -> Path:
    return _write(tmp_path / "target.parquet",
                  _table(user_id=[3, 4], item_id=[10, 12], ts=[5, 6], label=[1, 0],
                         domain=["target"] * 2))


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"ts": None}, ["missing column 'ts'"]),
        ({"user_id": [1.5, 2.5, 3.5]}, ["'user_id'", "type double", "1.5"]),
        ({"item_id": [10, None, 10]}, ["'item_id'", "null id at row 1"]),
        ({"user_id": ["a", "", "c"]}, ["'user_id'", "empty id at row 1"]),
        ({"label": [0, 2, 1]}, ["'label'", "value 2 at row 1"]),
        ({"label": [0.0, 0.5, 1.0]}, ["'label'", "0.5"]),
        ({"ts": [1.0, 2.5, 3.0]}, ["'ts'", "integer Unix seconds", "2.5"]),
        ({"ts": [1, -5, 3]}, ["'ts'", "negative value -5 at row 2"[:20]]),
        ({"ts": ["2020-01-01"] * 3}, ["'ts'", "2020-01-01"]),
        ({"domain": ["source", "", "source"]}, ["'domain'", "empty value at row 1"]),
        ({"domain": ["source", None, "source"]}, ["'domain'", "null at row 1"]),
        ({"domain": [1, 2, 3]}, ["'domain'", "expected string"]),
        ({"behavior": ["click", None, "buy"]}, ["'behavior'", "null at row 1"]),
        ({"tags": [[1], [2], [3]]}, ["'tags'", "list"]),
    ],
    ids=["missing-column", "wrong-id-type", "null-id", "empty-id", "label-2", "label-half",
         "float-ts", "negative-ts", "string-ts", "empty-domain", "null-domain", "int-domain",
         "null-behavior", "list-feature"],
)
def test_malformed_parquet(tmp_path, changes, words):
    source = _write(tmp_path / "source.parquet", _table(**changes))
    card = tmp_path / "card.json"
    result = _run(str(source), str(_target(tmp_path)), "--card", str(card))
    _assert_bad(result, str(source), *words)
    assert not card.exists()


def test_negative_ts_names_row(tmp_path):
    source = _write(tmp_path / "s.parquet", _table(ts=[1, -5, 3]))
    _assert_bad(_run(str(source)), "'ts'", "negative value -5 at row 1")


def test_malformed_csv(tmp_path):
    source = tmp_path / "source.csv"
    source.write_text("user_id,item_id,ts,label,domain\n1,10,100,1,source\n2,11,1.5,0,source\n")
    card = tmp_path / "card.json"
    _assert_bad(_run(str(source), "--card", str(card)), "source.csv", "'ts'", "1.5")
    assert not card.exists()


def test_empty_file(tmp_path):
    source = tmp_path / "source.parquet"
    source.write_bytes(b"")
    _assert_bad(_run(str(source)), "source.parquet", "empty file")


def test_empty_csv(tmp_path):
    source = tmp_path / "source.csv"
    source.write_text("")
    _assert_bad(_run(str(source)), "source.csv", "empty file")


def test_header_only_is_an_empty_domain(tmp_path):
    source = _write(tmp_path / "s.parquet", _table().slice(0, 0))
    _assert_bad(_run(str(source)), "no rows")


def test_truncated_parquet(tmp_path):
    good = _write(tmp_path / "good.parquet", _table())
    data = good.read_bytes()
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(data[: len(data) // 2])
    card = tmp_path / "card.json"
    _assert_bad(_run(str(bad), "--card", str(card)), "bad.parquet", "not a readable Parquet")
    assert not card.exists()


def test_garbage_with_parquet_suffix(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_text("this is not parquet\n")
    _assert_bad(_run(str(bad)), "bad.parquet", "Parquet")


def test_missing_file(tmp_path):
    _assert_bad(_run(str(tmp_path / "nope.parquet")), "nope.parquet", "no such file")


def test_directory_without_parquet_where_a_log_is_expected(tmp_path):
    (tmp_path / "logs").mkdir()
    _assert_bad(_run(str(tmp_path / "logs")), "logs", "directory")


def test_directory_where_the_card_file_is_expected(tmp_path):
    source = _write(tmp_path / "s.parquet", _table())
    (tmp_path / "card").mkdir()
    _assert_bad(_run(str(source), "--card", str(tmp_path / "card")), "card", "is a directory")


def test_no_shared_user_or_item(tmp_path):
    source = _write(tmp_path / "s.parquet", _table())
    target = _write(tmp_path / "t.parquet",
                    _table(user_id=[7, 8, 9], item_id=[70, 71, 72], domain=["target"] * 3))
    card = tmp_path / "card.json"
    _assert_bad(_run(str(source), str(target), "--card", str(card)),
                "no user and no item shared", "s.parquet", "t.parquet")
    assert not card.exists()


def test_id_types_must_agree(tmp_path):
    source = _write(tmp_path / "s.parquet", _table())
    target = _write(tmp_path / "t.parquet", _table(user_id=["1", "2", "3"]))
    _assert_bad(_run(str(source), str(target)), "'user_id'", "integer", "string")


def _valid_pair(tmp_path: Path, **source_columns) -> tuple[Path, Path]:
    """A pair that `select` and `run` accept: 5 source rows (the domain classifier's 5
    folds), 10 target rows (the neighbour scorer's 10 neighbours), both labels in the target,
    user 3 and item 10 in both."""
    source = _write(tmp_path / "s.parquet", pa.table({
        "user_id": [1, 2, 3, 1, 2], "item_id": [10, 11, 10, 11, 12],
        "ts": [100, 200, 300, 400, 500], "label": [0, 1, 1, 0, 1],
        "domain": ["source"] * 5, **source_columns}))
    target = _write(tmp_path / "target.parquet", pa.table({
        "user_id": [3, 4, 5, 4, 5] * 2, "item_id": [10, 14, 15, 14, 15] * 2,
        "ts": list(range(5, 15)), "label": [1, 0, 1, 0, 0] * 2, "domain": ["target"] * 10}))
    return source, target


def test_a_pair_the_default_selection_rejects_is_not_valid(tmp_path):
    source, target = _valid_pair(tmp_path)
    _write(target, pa.Table.from_pandas(pd.read_parquet(target).head(9), preserve_index=False))
    result = _run(str(source), str(target))
    assert result.exit_code == 2
    assert result.stderr == "error: knn.k 10 is more than the 9 target rows (valid: 1 to 9)\n"


def test_valid_pair_prints_and_writes_card(tmp_path):
    source, target = _valid_pair(
        tmp_path, behavior=["click", "click", "purchase", "click", "click"],
        price=[1.0, 2.0, 3.0, 4.0, 5.0])
    card_path = tmp_path / "card.json"
    result = _run(str(source), str(target), "--card", str(card_path), "--json")
    assert result.exit_code == 0, result.output
    card = json.loads(result.output)
    assert card == json.loads(card_path.read_text()) | {"valid": True}
    assert card["domains"]["source"]["rows"] == 5
    assert card["domains"]["source"]["behaviors"] == {"click": 4, "purchase": 1}
    assert card["domains"]["source"]["features"] == ["price"]
    assert card["domains"]["target"]["label_rate"] == 0.4
    # user 3 and item 10 are in both logs
    assert card["shared"] == {"users": 1, "items": 1}


def test_directory_of_parquet_files_is_one_log(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    _write(logs / "part-0.parquet", _table().slice(0, 2))
    _write(logs / "part-1.parquet", _table().slice(2, 1))
    result = _run(str(logs), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["domains"]["source"]["rows"] == 3


def test_inputs_are_not_modified(tmp_path):
    source, target = _valid_pair(tmp_path)
    before = source.read_bytes()
    assert _run(str(source), str(target)).exit_code == 0
    assert source.read_bytes() == before
