"""Every bad input is one line on stderr, exit code 2, and leaves no trace (issue #17).

The table :data:`CASES` holds one line per case (see :mod:`tests.cli.bad_input`); each runs
in-process in an empty workspace and is checked for: the exit code, exactly one stderr line
``error: ...`` holding the expected words (the file, column, value or option), nothing on
stdout, and a workspace byte-identical to before (no output, no temporary file, inputs
unchanged). The interrupt tests at the end run ``graphsel`` in a subprocess and send it
SIGINT / SIGTERM.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from graphsel.cli import cli
from tests.cli.bad_input import (
    ML_INTER,
    SOURCE,
    TAOBAO,
    Case,
    duplicated,
    folder,
    gz,
    half,
    hardlink,
    link,
    ml1m,
    ml_inter,
    parquet,
    raw,
    snapshot,
    src,
    table,
    taobao,
    text,
    tgt,
)

HEADER = "user_id,item_id,ts,label,domain\n"
ST = {"s.parquet": src(), "t.parquet": tgt()}
"""A valid pair, for cases about options and outputs."""
MS = [1_700_000_000_000 + i for i in range(5)]
LOGS = {"logs": folder(**{"part-0.parquet": src()}), "t.parquet": tgt()}


def _bad_ts(values: list[int]) -> dict:
    return {"s.parquet": src(ts=values)}


def _feature(source_values: list, target_values: list) -> dict:
    return {"s.parquet": src(f=source_values), "t.parquet": tgt(f=target_values)}


CASES = [
    # -- the read path every command shares (through `validate FILE`) -----------------------
    Case("read", "missing-file", "validate nope.parquet", {}, ("nope.parquet", "no such file")),
    Case("read", "path-through-a-file", "validate s.parquet/x.parquet", {"s.parquet": src()},
         ("s.parquet/x.parquet", "no such file")),
    Case("read", "empty-parquet-file", "validate s.parquet", {"s.parquet": raw(b"")},
         ("s.parquet", "empty file")),
    Case("read", "empty-csv-file", "validate s.csv", {"s.csv": raw(b"")}, ("s.csv", "empty file")),
    Case("read", "garbage-parquet", "validate s.parquet", {"s.parquet": raw(b"not parquet\n")},
         ("s.parquet", "not a readable Parquet")),
    Case("read", "truncated-parquet", "validate s.parquet", {"s.parquet": half(src())},
         ("s.parquet", "not a readable Parquet")),
    Case("read", "magic-only-parquet", "validate s.pq", {"s.pq": raw(b"PAR1PAR1")},
         ("s.pq", "not a readable Parquet")),
    Case("read", "folder-without-parquet", "validate logs", {"logs": folder(**{"a.txt": text("x")})},
         ("logs", "no .parquet files")),
    Case("read", "folder-with-only-a-leftover", "validate logs",
         {"logs": folder(**{".part.parquet.123.abc.tmp": src(), ".part.parquet": src()})},
         ("logs", "no .parquet files")),
    Case("read", "folder-mixed-schemas", "validate logs",
         {"logs": folder(**{"a.parquet": src(), "b.parquet": src(user_id=list("abcab"))})},
         ("logs", "do not share one schema")),
    Case("read", "folder-one-bad-file", "validate logs",
         {"logs": folder(**{"a.parquet": src(), "b.parquet": raw(b"junk")})},
         ("logs/b.parquet", "not a readable Parquet")),
    Case("read", "header-only-parquet", "validate s.parquet",
         {"s.parquet": parquet(table(SOURCE).slice(0, 0))}, ("s.parquet", "no rows")),
    Case("read", "duplicated-user-id", "validate s.parquet", {"s.parquet": duplicated("user_id")},
         ("s.parquet", "column 'user_id' appears more than once")),
    Case("read", "duplicated-label", "validate s.parquet", {"s.parquet": duplicated("label")},
         ("s.parquet", "column 'label' appears more than once")),
    Case("read", "duplicated-csv-column", "validate s.csv",
         {"s.csv": text("user_id,item_id,ts,label,domain,ts\n1,10,100,1,s,5\n")},
         ("s.csv", "column 'ts' appears more than once")),
    Case("read", "csv-ragged-row", "validate s.csv",
         {"s.csv": text(HEADER + "1,10,100,1,s\n2,11,200,0,s,extra\n")},
         ("s.csv", "not a readable CSV")),
    Case("read", "csv-gz-truncated", "validate s.csv.gz",
         {"s.csv.gz": half(gz(HEADER + "1,10,100,1,s\n" * 2000))},
         ("s.csv.gz", "not a readable CSV")),
    Case("read", "csv-gz-not-gzip", "validate s.csv.gz", {"s.csv.gz": text(HEADER)},
         ("s.csv.gz", "not a readable CSV")),
    Case("read", "tsv-with-commas", "validate s.tsv", {"s.tsv": text(HEADER + "1,10,100,1,s\n")},
         ("s.tsv", "missing column 'user_id'")),
    Case("read", "csv-ts-float", "validate s.csv", {"s.csv": text(HEADER + "1,10,1.5,1,s\n")},
         ("s.csv", "'ts'", "1.5")),
    Case("read", "csv-label-word", "validate s.csv", {"s.csv": text(HEADER + "1,10,100,yes,s\n")},
         ("s.csv", "'label'", "yes")),
    Case("read", "csv-ts-milliseconds", "validate s.csv",
         {"s.csv": text(HEADER + "1,10,1700000000000,1,s\n")},
         ("s.csv", "'ts'", "1700000000000", "milliseconds", "divide them by 1000")),
    *[Case("read", f"missing-{column}", "validate s.parquet",
           {"s.parquet": src(**{column: None})}, ("s.parquet", f"missing column '{column}'"))
      for column in ("user_id", "item_id", "ts", "label", "domain")],
    Case("read", "user-id-float", "validate s.parquet", {"s.parquet": src(user_id=[1.5] * 5)},
         ("s.parquet", "'user_id'", "type double", "1.5")),
    Case("read", "item-id-float", "validate s.parquet", {"s.parquet": src(item_id=[0.5] * 5)},
         ("s.parquet", "'item_id'", "type double")),
    Case("read", "user-id-bool", "validate s.parquet", {"s.parquet": src(user_id=[True] * 5)},
         ("s.parquet", "'user_id'", "type bool")),
    Case("read", "user-id-list", "validate s.parquet", {"s.parquet": src(user_id=[[1]] * 5)},
         ("s.parquet", "'user_id'", "list")),
    Case("read", "null-user-id", "validate s.parquet",
         {"s.parquet": src(user_id=[1, None, 3, 1, 2])}, ("'user_id'", "null id at row 1")),
    Case("read", "null-item-id", "validate s.parquet",
         {"s.parquet": src(item_id=[10, 11, None, 11, 12])}, ("'item_id'", "null id at row 2")),
    Case("read", "empty-user-id", "validate s.parquet",
         {"s.parquet": src(user_id=["a", "", "c", "a", "b"])}, ("'user_id'", "empty id at row 1")),
    Case("read", "empty-item-id", "validate s.parquet",
         {"s.parquet": src(item_id=["x", "y", "x", "", "z"])}, ("'item_id'", "empty id at row 3")),
    Case("read", "label-2", "validate s.parquet", {"s.parquet": src(label=[0, 2, 1, 0, 1])},
         ("'label'", "value 2 at row 1", "expected 0 or 1")),
    Case("read", "label-minus-1", "validate s.parquet", {"s.parquet": src(label=[0, 1, -1, 0, 1])},
         ("'label'", "value -1 at row 2")),
    Case("read", "label-half", "validate s.parquet",
         {"s.parquet": src(label=[0.0, 0.5, 1.0, 0.0, 1.0])}, ("'label'", "0.5")),
    Case("read", "label-null", "validate s.parquet", {"s.parquet": src(label=[0, None, 1, 0, 1])},
         ("'label'", "null at row 1")),
    Case("read", "label-string", "validate s.parquet", {"s.parquet": src(label=["y"] * 5)},
         ("'label'", "type string", "'y'")),
    Case("read", "label-nan", "validate s.parquet",
         {"s.parquet": src(label=[0.0, float("nan"), 1.0, 0.0, 1.0])}, ("'label'", "nan")),
    Case("read", "ts-float", "validate s.parquet", {"s.parquet": src(ts=[1.0, 2.5, 3, 4, 5])},
         ("'ts'", "integer Unix seconds", "2.5")),
    Case("read", "ts-string", "validate s.parquet", {"s.parquet": src(ts=["2020-01-01"] * 5)},
         ("'ts'", "2020-01-01")),
    Case("read", "ts-null", "validate s.parquet", {"s.parquet": src(ts=[1, 2, None, 4, 5])},
         ("'ts'", "null at row 2")),
    Case("read", "ts-negative", "validate s.parquet", _bad_ts([1, -5, 3, 4, 5]),
         ("'ts'", "negative value -5 at row 1")),
    Case("read", "ts-datetime-type", "validate s.parquet",
         {"s.parquet": src(ts=pa.array([0] * 5, pa.timestamp("s")))},
         ("'ts'", "type timestamp[", "integer Unix seconds")),
    Case("read", "ts-milliseconds", "validate s.parquet", _bad_ts(MS),
         ("s.parquet", "'ts'", "1700000000000 at row 0", "milliseconds", "divide them by 1000",
          "--ts-unit ms")),
    Case("read", "ts-microseconds", "validate s.parquet", _bad_ts([v * 1000 for v in MS]),
         ("'ts'", "microseconds", "divide them by 1000000")),
    Case("read", "ts-nanoseconds", "validate s.parquet", _bad_ts([v * 10**6 for v in MS]),
         ("'ts'", "nanoseconds", "--ts-unit ns")),
    Case("read", "ts-nanoseconds-read-as-ms", "validate s.parquet --ts-unit ms",
         _bad_ts([v * 10**6 for v in MS]), ("'ts'", "microseconds")),
    Case("read", "ts-year-2100", "validate s.parquet", _bad_ts([4_102_444_800] * 5),
         ("'ts'", "4102444800 at row 0", "2100-01-01", "in the future")),
    Case("read", "ts-one-garbage-value", "validate s.parquet",
         _bad_ts([1_511_568_000, 99_999_999_999_999, 1_511_568_100, 1_511_568_200, 1]),
         ("'ts'", "99999999999999 at row 1", "after 2200-01-01")),
    Case("read", "ts-one-row-after-2200", "validate s.parquet",
         _bad_ts([1_511_568_000, 7_258_118_400, 1_511_568_100, 1_511_568_200, 1]),
         ("'ts'", "7258118400 at row 1", "expected Unix seconds")),
    Case("read", "domain-int", "validate s.parquet", {"s.parquet": src(domain=[1] * 5)},
         ("'domain'", "expected string")),
    Case("read", "domain-null", "validate s.parquet",
         {"s.parquet": src(domain=["s", None, "s", "s", "s"])}, ("'domain'", "null at row 1")),
    Case("read", "domain-empty", "validate s.parquet",
         {"s.parquet": src(domain=["s", "s", "", "s", "s"])}, ("'domain'", "empty value at row 2")),
    Case("read", "behavior-null", "validate s.parquet",
         {"s.parquet": src(behavior=["click", None, "buy", "click", "buy"])},
         ("'behavior'", "null at row 1")),
    Case("read", "behavior-empty", "validate s.parquet", {"s.parquet": src(behavior=[""] * 5)},
         ("'behavior'", "empty value at row 0")),
    Case("read", "behavior-int", "validate s.parquet", {"s.parquet": src(behavior=[1] * 5)},
         ("'behavior'", "expected string")),
    Case("read", "feature-list", "validate s.parquet", {"s.parquet": src(tags=[[1]] * 5)},
         ("feature column 'tags'", "list")),
    Case("read", "feature-struct", "validate s.parquet", {"s.parquet": src(meta=[{"a": 1}] * 5)},
         ("feature column 'meta'", "struct")),
    Case("read", "feature-binary", "validate s.parquet", {"s.parquet": src(blob=[b"\x00"] * 5)},
         ("feature column 'blob'", "binary")),
    Case("read", "feature-datetime", "validate s.parquet",
         {"s.parquet": src(when=pa.array([0] * 5, pa.timestamp("ms")))},
         ("feature column 'when'", "timestamp")),
    Case("read", "ts-unit-unknown", "validate s.parquet --ts-unit hours", {"s.parquet": src()},
         ("--ts-unit", "'hours' is not one of", "validate -h'")),
    Case("read", "unknown-option", "validate s.parquet --bogus", {"s.parquet": src()},
         ("No such option", "--bogus")),
    Case("read", "extra-argument", "validate s.parquet t.parquet u.parquet", ST,
         ("unexpected extra argument", "u.parquet")),
    Case("read", "no-argument", "validate", {}, ("Missing argument", "SOURCE")),
    # -- pairs: `validate SOURCE TARGET` runs the checks `select` and `run` make --------------
    Case("validate", "no-shared-user-or-item", "validate s.parquet t.parquet",
         {"s.parquet": src(), "t.parquet": tgt(user_id=[7] * 5, item_id=[70] * 5)},
         ("no user and no item shared", "s.parquet", "t.parquet")),
    Case("validate", "user-id-types-differ", "validate s.parquet t.parquet",
         {"s.parquet": src(), "t.parquet": tgt(user_id=list("34545"))},
         ("'user_id'", "integer in s.parquet", "string in t.parquet")),
    Case("validate", "item-id-types-differ", "validate s.parquet t.parquet",
         {"s.parquet": src(), "t.parquet": tgt(item_id=["10"] * 5)}, ("'item_id'", "string")),
    Case("validate", "feature-float-vs-string", "validate s.parquet t.parquet",
         _feature([1.0] * 5, ["1.0"] * 5),
         ("column 'f'", "numeric (float) in s.parquet", "string in t.parquet", "'1.0'")),
    Case("validate", "feature-int-vs-string", "validate s.parquet t.parquet",
         _feature([1] * 5, ["a"] * 5), ("column 'f'", "integer in s.parquet", "string")),
    Case("validate", "feature-float-vs-int", "validate s.parquet t.parquet",
         _feature([0.5] * 5, [1] * 5), ("column 'f'", "numeric (float)", "integer in t.parquet")),
    Case("validate", "feature-bool-vs-string", "validate s.parquet t.parquet",
         _feature([True] * 5, ["yes"] * 5), ("column 'f'", "boolean", "string")),
    Case("validate", "target-one-row", "validate s.parquet t.parquet",
         {"s.parquet": src(), "t.parquet": parquet(table(SOURCE).slice(2, 1))},
         ("t.parquet", "the target has 1 row", "at least 5")),
    Case("validate", "target-four-rows", "validate s.parquet t.parquet",
         {"s.parquet": src(), "t.parquet": parquet(table(SOURCE).slice(0, 4))},
         ("t.parquet", "the target has 4 rows")),
    Case("validate", "source-two-rows", "validate s.parquet t.parquet",
         {"s.parquet": parquet(table(SOURCE).slice(0, 2)), "t.parquet": tgt()},
         ("s.parquet", "the source has 2 rows")),
    Case("validate", "target-all-negative", "validate s.parquet t.parquet",
         {"s.parquet": src(), "t.parquet": tgt(label=[0] * 5)},
         ("t.parquet", "label 0 in all 5 rows")),
    Case("validate", "target-all-positive", "validate s.parquet t.parquet",
         {"s.parquet": src(), "t.parquet": tgt(label=[1] * 5)},
         ("t.parquet", "label 1 in all 5 rows")),
    Case("validate", "target-label-2", "validate s.parquet t.parquet",
         {"s.parquet": src(), "t.parquet": tgt(label=[1, 0, 2, 0, 1])},
         ("t.parquet", "'label'", "value 2 at row 2")),
    Case("validate", "target-milliseconds", "validate s.parquet t.parquet",
         {"s.parquet": src(), "t.parquet": tgt(ts=MS)}, ("t.parquet", "'ts'", "milliseconds")),
    Case("validate", "target-missing", "validate s.parquet t.parquet", {"s.parquet": src()},
         ("t.parquet", "no such file")),
    Case("validate", "target-empty-folder", "validate s.parquet t",
         {"s.parquet": src(), "t": folder()}, ("t", "no .parquet files")),
    Case("validate", "target-duplicated-column", "validate s.parquet t.parquet",
         {"s.parquet": src(), "t.parquet": duplicated("domain")},
         ("t.parquet", "column 'domain' appears more than once")),
    # -- validate --card: never onto an input, however spelt ---------------------------------
    Case("validate", "card-is-source", "validate s.parquet t.parquet --card s.parquet", ST,
         ("--card s.parquet", "is the input SOURCE s.parquet", "destroy")),
    Case("validate", "card-is-dot-source", "validate s.parquet t.parquet --card ./s.parquet", ST,
         ("--card ./s.parquet", "SOURCE s.parquet")),
    Case("validate", "card-is-absolute-source", "validate s.parquet t.parquet "
         "--card {root}/s.parquet", ST, ("--card {root}/s.parquet", "SOURCE s.parquet")),
    Case("validate", "card-is-source-through-dotdot", "validate s.parquet t.parquet "
         "--card ../{name}/s.parquet", ST, ("--card ../{name}/s.parquet", "SOURCE")),
    Case("validate", "card-is-source-absolute-input", "validate {root}/s.parquet t.parquet "
         "--card s.parquet", ST, ("--card s.parquet", "SOURCE {root}/s.parquet")),
    Case("validate", "card-is-a-link-to-source", "validate s.parquet t.parquet --card c.json",
         {**ST, "c.json": link("s.parquet")}, ("--card c.json", "{root}/s.parquet", "SOURCE")),
    Case("validate", "card-is-a-hard-link-to-source", "validate s.parquet t.parquet "
         "--card c.json", {**ST, "c.json": hardlink("s.parquet")}, ("--card c.json", "SOURCE")),
    Case("validate", "card-through-linked-folder", "validate s.parquet t.parquet "
         "--card alias/s.parquet", {**ST, "alias": link(".")}, ("--card alias/s.parquet",)),
    Case("validate", "source-is-a-link-card-is-file", "validate l.parquet t.parquet "
         "--card s.parquet", {**ST, "l.parquet": link("s.parquet")},
         ("--card s.parquet", "SOURCE l.parquet")),
    Case("validate", "card-is-target", "validate s.parquet t.parquet --card t.parquet", ST,
         ("--card t.parquet", "is the input TARGET t.parquet")),
    Case("validate", "card-is-single-source", "validate s.parquet --card s.parquet",
         {"s.parquet": src()}, ("--card s.parquet", "SOURCE s.parquet")),
    Case("validate", "card-inside-source-folder", "validate logs t.parquet "
         "--card logs/card.json", LOGS, ("--card logs/card.json",
                                         "lies inside the input folder SOURCE logs")),
    Case("validate", "card-onto-a-part-file", "validate logs t.parquet "
         "--card logs/part-0.parquet", LOGS, ("--card logs/part-0.parquet", "SOURCE logs")),
    Case("validate", "card-guard-before-reading", "validate s.parquet --card s.parquet",
         {"s.parquet": raw(b"junk")}, ("--card s.parquet", "is the input")),
    Case("validate", "card-is-a-folder", "validate s.parquet t.parquet --card out",
         {**ST, "out": folder()}, ("out", "is a directory")),
    Case("validate", "card-parent-missing", "validate s.parquet t.parquet --card no/card.json",
         ST, ("no/card.json", "parent directory no does not exist")),
    # -- datasets -------------------------------------------------------------------------------
    Case("datasets", "unknown-dataset", "datasets prepare movielens --out out", {},
         ("Could not resolve dataset 'movielens'", "movielens-1m")),
    Case("datasets", "unknown-subcommand", "datasets nosuch", {}, ("No such command 'nosuch'",)),
    Case("datasets", "missing-out", "datasets prepare synthetic", {}, ("Missing option '--out'",)),
    Case("datasets", "missing-name", "datasets prepare --out out", {}, ("Missing argument",)),
    Case("datasets", "synthetic-scale-0", "datasets prepare synthetic --scale 0 --out out", {},
         ("option 'scale' must be > 0, got 0.0",)),
    Case("datasets", "synthetic-scale-negative", "datasets prepare synthetic --scale -1 "
         "--out out", {}, ("option 'scale'", "-1")),
    Case("datasets", "synthetic-scale-word", "datasets prepare synthetic --scale big --out out",
         {}, ("--scale", "'big' is not a valid float")),
    Case("datasets", "synthetic-seed-word", "datasets prepare synthetic --seed abc --out out",
         {}, ("--seed", "'abc' is not a valid integer")),
    Case("datasets", "synthetic-takes-no-path", "datasets prepare synthetic --path . --out out",
         {}, ("option --path does not apply to dataset 'synthetic'",)),
    Case("datasets", "synthetic-out-is-a-file", "datasets prepare synthetic --out out",
         {"out": text("mine")}, ("out: is a file, expected a directory",)),
    Case("datasets", "movielens-takes-no-seed", "datasets prepare movielens-1m --seed 1 "
         "--out out", {}, ("option --seed does not apply to dataset 'movielens-1m'",)),
    Case("datasets", "movielens-needs-path", "datasets prepare movielens-1m --out out", {},
         ("dataset 'movielens-1m' needs option 'path'",)),
    Case("datasets", "movielens-path-missing", "datasets prepare movielens-1m --path nope "
         "--out out", {}, ("nope: no such directory",)),
    Case("datasets", "movielens-path-is-a-file", "datasets prepare movielens-1m --path ml "
         "--out out", {"ml": text("x")}, ("ml: is a file",)),
    Case("datasets", "movielens-no-inter-file", "datasets prepare movielens-1m --path ml "
         "--out out", {"ml": ml1m(inter=None)}, ("ml/ml-1m.inter.gz: no such file",)),
    Case("datasets", "movielens-truncated-inter", "datasets prepare movielens-1m --path ml "
         "--out out", {"ml": ml1m(inter=half(gz("user_id:token\tx\n" + "u1\tA\n" * 5000)))},
         ("ml/ml-1m.inter.gz", "not a readable RecBole atomic file", "end-of-stream")),
    Case("datasets", "movielens-inter-not-gzip", "datasets prepare movielens-1m --path ml "
         "--out out", {"ml": ml1m(inter=text("plain text"))},
         ("ml/ml-1m.inter.gz", "not a readable RecBole atomic file")),
    Case("datasets", "movielens-no-rating-column", "datasets prepare movielens-1m --path ml "
         "--out out", {"ml": ml1m(inter=[("user_id:token", "item_id:token", "timestamp:float"),
                                         ("u1", "A (1990)", "100")])},
         ("ml/ml-1m.inter.gz", "missing column 'rating'")),
    Case("datasets", "movielens-rating-word", "datasets prepare movielens-1m --path ml "
         "--out out", {"ml": ml1m(inter=ml_inter(("u1", "A (1990)", "good", "100")))},
         ("ml/ml-1m.inter.gz", "'rating'", "'good' at row 0")),
    Case("datasets", "movielens-unknown-genre", "datasets prepare movielens-1m --path ml "
         "--target-genre Opera --out out", {"ml": ml1m()},
         ("Could not resolve genre 'Opera'", "Documentary")),
    Case("datasets", "movielens-unknown-user", "datasets prepare movielens-1m --path ml "
         "--out out", {"ml": ml1m(inter=[*ML_INTER, ("u9", "A (1990)", "4", "500")])},
         ("ml/ml-1m.inter.gz", "'user_id' value 'u9'", "ml-1m.user.gz")),
    Case("datasets", "movielens-milliseconds", "datasets prepare movielens-1m --path ml "
         "--out out", {"ml": ml1m(inter=[ML_INTER[0], *[(u, i, r, t + "0000000000") for u, i, r, t
                                                       in ML_INTER[1:]]])},
         ("ml/ml-1m.inter.gz", "'ts'", "milliseconds")),
    Case("datasets", "movielens-out-is-path", "datasets prepare movielens-1m --path ml "
         "--out ml", {"ml": ml1m()}, ("--out ml", "is the input --path ml")),
    Case("datasets", "movielens-out-is-dot-path", "datasets prepare movielens-1m --path ml "
         "--out ./ml/", {"ml": ml1m()}, ("--out ml", "is the input --path ml")),
    Case("datasets", "movielens-out-is-absolute-path", "datasets prepare movielens-1m "
         "--path ml --out {root}/ml", {"ml": ml1m()}, ("--out {root}/ml", "--path ml")),
    Case("datasets", "movielens-out-inside-path", "datasets prepare movielens-1m --path ml "
         "--out ml/prepared", {"ml": ml1m()}, ("--out ml/prepared",
                                               "lies inside the input --path ml")),
    Case("datasets", "movielens-out-is-a-link-to-path", "datasets prepare movielens-1m "
         "--path ml --out alias", {"ml": ml1m(), "alias": link("ml")},
         ("--out alias ({root}/ml)", "--path ml")),
    Case("datasets", "movielens-path-is-a-link-to-out", "datasets prepare movielens-1m "
         "--path alias --out ml", {"ml": ml1m(), "alias": link("ml")},
         ("--out ml", "--path alias ({root}/ml)")),
    Case("datasets", "movielens-out-would-overwrite-a-path-file", "datasets prepare "
         "movielens-1m --path ml/source.parquet --out ml",
         {"ml": folder(**{"source.parquet": text("x")})},
         ("--out ml", "would overwrite source.parquet", "--path ml/source.parquet")),
    Case("datasets", "taobao-needs-path", "datasets prepare taobao-userbehavior --out out", {},
         ("dataset 'taobao-userbehavior' needs option 'path'",)),
    Case("datasets", "taobao-bad-category", "datasets prepare taobao-userbehavior --path tb "
         "--target-categories 1,x --out out", {"tb": taobao()},
         ("option 'target_categories': 'x' is not an integer category id",)),
    Case("datasets", "taobao-no-file", "datasets prepare taobao-userbehavior --path tb "
         "--out out", {"tb": folder()}, ("tb/UserBehavior.csv.gz: no such file",)),
    Case("datasets", "taobao-truncated", "datasets prepare taobao-userbehavior --path tb "
         "--out out", {"tb": taobao(TAOBAO * 3000, compress=lambda t: half(gz(t)))},
         ("tb/UserBehavior.csv.gz",)),
    Case("datasets", "taobao-extra-column", "datasets prepare taobao-userbehavior --path tb "
         "--out out", {"tb": taobao(TAOBAO + "1,100,7,pv,1000,extra\n")},
         ("tb/UserBehavior.csv.gz",)),
    Case("datasets", "taobao-unknown-behaviour", "datasets prepare taobao-userbehavior "
         "--path tb --out out", {"tb": taobao(TAOBAO + "1,100,7,like,1000\n")},
         ("tb/UserBehavior.csv.gz", "like")),
    Case("datasets", "taobao-out-is-path", "datasets prepare taobao-userbehavior --path tb "
         "--out ./tb", {"tb": taobao()}, ("--out tb", "is the input --path tb")),
]


def test_case_ids_are_unique():
    ids = [(case.command, case.id) for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=[f"{c.command}:{c.id}" for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch):
    root = tmp_path / "ws"
    root.mkdir()
    monkeypatch.chdir(root)
    case.build(root)
    before = snapshot(root)
    result = CliRunner().invoke(cli, case.argv(root))
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exc_info
    assert result.exit_code == case.code, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for word in case.expected(root):
        assert word in lines[0], (word, lines[0])
    assert snapshot(root) == before


def test_counts_by_command():
    counts = collections.Counter(case.command for case in CASES)
    # the read path is every command's; validate and datasets are this file's commands
    assert counts["read"] >= 60 and counts["validate"] >= 30 and counts["datasets"] >= 30
    assert sum(counts.values()) >= 120


# -- interrupts -------------------------------------------------------------------------------


def _started(process: subprocess.Popen, deadline: float) -> None:
    """Waits until ``graphsel``'s ``main`` runs: it catches SIGTERM from then on (bit 15 of
    ``SigCgt`` in ``/proc/PID/status``), past the imports, so the signal meets the command."""
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        status = Path(f"/proc/{process.pid}/status").read_text()
        caught = int(next(line.split()[1] for line in status.splitlines()
                          if line.startswith("SigCgt:")), 16)
        if caught & (1 << (signal.SIGTERM - 1)):
            time.sleep(1.0)  # into the synthetic generator (about 15 s at --scale 20)
            return
        time.sleep(0.05)
    raise AssertionError("the command did not start")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("signum, code, words", [
    (signal.SIGINT, 130, "interrupted (Ctrl-C)"),
    (signal.SIGTERM, 143, "terminated by SIGTERM"),
])
def test_interrupt_leaves_nothing(tmp_path, signum, code, words):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("kept")
    before = snapshot(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "graphsel", "datasets", "prepare", "synthetic", "--scale", "20",
         "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    try:
        _started(process, time.monotonic() + 120)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, stderr
    assert stdout == ""
    assert stderr.splitlines() == [f"error: {words}; unfinished output files were removed"]
    assert snapshot(tmp_path) == before
