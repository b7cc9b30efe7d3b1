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
SEL = "select --source s.parquet --target t.parquet"
EXP = "expand --source s.parquet --target t.parquet"
RUN_YAML = "source: s.parquet\ntarget: t.parquet\n"
RUN = {**ST, "r.yaml": text(RUN_YAML)}
"""A valid pair and a run config that names it."""


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
    # -- select: outputs never onto an input --------------------------------------------------
    Case("select", "out-is-source", f"{SEL} --out ./s.parquet", ST,
         ("--out ./s.parquet", "is the input --source s.parquet", "destroy")),
    Case("select", "out-is-absolute-target", f"{SEL} --out {{root}}/t.parquet", ST,
         ("--out {root}/t.parquet", "is the input --target t.parquet")),
    Case("select", "out-is-a-link-to-source", f"{SEL} --out o.parquet",
         {**ST, "o.parquet": link("s.parquet")}, ("--out o.parquet", "--source s.parquet")),
    Case("select", "report-is-source", f"{SEL} --out o.parquet --report s.parquet", ST,
         ("--report s.parquet", "is the input --source s.parquet")),
    Case("select", "report-is-config", f"{SEL} --out o.parquet --config c.yaml --report c.yaml",
         {**ST, "c.yaml": text("seed: 1\n")}, ("--report c.yaml", "is the input --config c.yaml")),
    Case("select", "report-is-truth", f"{SEL} --out o.parquet --report truth.parquet",
         {**ST, "truth.parquet": parquet(pa.table({"in_target_community": [True] * 5}))},
         ("--report truth.parquet", "is the input --truth")),
    Case("select", "out-inside-source-folder", "select --source logs --target t.parquet "
         "--out logs/sel.parquet", LOGS, ("--out logs/sel.parquet", "inside the input folder")),
    Case("select", "plots-is-source-folder", "select --source logs --target t.parquet "
         "--out o.parquet --plots logs", LOGS, ("--plots logs", "is the input --source logs")),
    Case("select", "plots-holds-the-target", f"{SEL} --out o.parquet --plots .", ST,
         ("--plots .", "holds the input")),
    Case("select", "out-and-report-same-file", f"{SEL} --out o.parquet --report ./o.parquet", ST,
         ("is the same path as",)),
    Case("select", "out-extension-unknown", f"{SEL} --out sel.txt", ST, ("sel.txt", ".parquet",
                                                                        ".csv")),
    Case("select", "out-is-a-folder", f"{SEL} --out out", {**ST, "out": folder()},
         ("out", "is a directory")),
    Case("select", "out-parent-missing", f"{SEL} --out no/o.parquet", ST,
         ("no/o.parquet", "parent directory no does not exist")),
    Case("select", "plots-is-a-file", f"{SEL} --out o.parquet --plots p", {**ST, "p": text("x")},
         ("p: is a file",)),
    Case("select", "out-guard-before-reading", "select --source s.parquet --target t.parquet "
         "--out s.parquet", {"s.parquet": raw(b"junk"), "t.parquet": raw(b"junk")},
         ("--out s.parquet", "is the input")),
    # -- select: every parameter checked before any work, naming its flag and range -------------
    Case("select", "knn-threshold-2", f"{SEL} --out o.parquet --knn-threshold 2", ST,
         ("--knn-threshold", "threshold must be a number in [-1.0, 1.0], got 2.0")),
    Case("select", "knn-threshold-minus-2", f"{SEL} --out o.parquet --knn-threshold -2", ST,
         ("--knn-threshold", "[-1.0, 1.0]", "-2.0")),
    Case("select", "knn-threshold-nan", f"{SEL} --out o.parquet --knn-threshold nan", ST,
         ("--knn-threshold", "nan")),
    Case("select", "knn-k-above-target-rows", f"{SEL} --out o.parquet --knn-k 100000", ST,
         ("--knn-k 100000 is more than the 5 target rows (valid: 1 to 5)",)),
    Case("select", "knn-k-default-above-target-rows", f"{SEL} --out o.parquet", ST,
         ("knn.k 10 is more than the 5 target rows (valid: 1 to 5)",)),
    Case("select", "knn-k-0", f"{SEL} --out o.parquet --knn-k 0", ST,
         ("--knn-k", "k must be an integer >= 1, got 0")),
    Case("select", "knn-k-word", f"{SEL} --out o.parquet --knn-k ten", ST,
         ("--knn-k", "'ten' is not a valid integer")),
    Case("select", "knn-index-unknown", f"{SEL} --out o.parquet --knn-index hnsw32", ST,
         ("--knn-index", "Could not resolve index 'hnsw32'", "HNSW32")),
    Case("select", "knn-index-ivf0", f"{SEL} --out o.parquet --knn-index IVF0,Flat", ST,
         ("--knn-index", "'IVF0,Flat'")),
    Case("select", "da-threshold-1.5", f"{SEL} --out o.parquet --da-threshold 1.5", ST,
         ("--da-threshold", "threshold must be a number in [0.0, 1.0], got 1.5")),
    Case("select", "da-threshold-negative", f"{SEL} --out o.parquet --da-threshold -0.1", ST,
         ("--da-threshold", "[0.0, 1.0]")),
    Case("select", "keep-quantile-0", f"{SEL} --out o.parquet --keep-quantile 0", ST,
         ("--keep-quantile", "keep_quantile must be a number in (0.0, 1.0], got 0.0")),
    Case("select", "keep-quantile-2", f"{SEL} --out o.parquet --keep-quantile 2", ST,
         ("--keep-quantile", "(0.0, 1.0]")),
    Case("select", "budget-0", f"{SEL} --out o.parquet --budget 0", ST,
         ("--budget", "budget must be an integer >= 1, got 0")),
    Case("select", "budget-negative", f"{SEL} --out o.parquet --budget -5", ST,
         ("--budget", "-5")),
    Case("select", "budget-and-quantile", f"{SEL} --out o.parquet --budget 3 --keep-quantile .5",
         ST, ("give at most one of threshold, keep_quantile, budget",)),
    Case("select", "da-rule-without-da-stage", f"{SEL} --out o.parquet --stages graph "
         "--budget 5", ST, ("'da' stage", "not among the stages ['graph']")),
    Case("select", "fanout-minus-1", f"{SEL} --out o.parquet --fanout -1", ST,
         ("--fanout", "fanout must be an integer >= 1 or None, got -1")),
    Case("select", "fanout-0", f"{SEL} --out o.parquet --fanout 0", ST, ("--fanout", "got 0")),
    Case("select", "hops-minus-1", f"{SEL} --out o.parquet --hops -1", ST,
         ("--hops", "num_hops must be an integer >= 0 and <= 100, got -1")),
    Case("select", "hops-101", f"{SEL} --out o.parquet --hops 101", ST, ("--hops", "<= 100",
                                                                        "101")),
    Case("select", "hops-word", f"{SEL} --out o.parquet --hops two", ST,
         ("--hops", "'two' is not a valid integer")),
    Case("select", "max-degree-negative", f"{SEL} --out o.parquet --max-degree -3", ST,
         ("--max-degree must be >= 0, got -3",)),
    Case("select", "max-degree-word", f"{SEL} --out o.parquet --max-degree lots", ST,
         ("--max-degree must be a number, 'auto' or 'none', got 'lots'",)),
    Case("select", "max-user-rows-0", f"{SEL} --out o.parquet --max-user-rows 0", ST,
         ("--max-user-rows", "max_user_rows must be an integer >= 1", "got 0")),
    Case("select", "max-user-rows-word", f"{SEL} --out o.parquet --max-user-rows many", ST,
         ("--max-user-rows", "'many'")),
    Case("select", "mode-unknown", f"{SEL} --out o.parquet --mode all", ST,
         ("--mode", "Could not resolve mode 'all'", "'both'")),
    Case("select", "edges-unknown", f"{SEL} --out o.parquet --edges clicks", ST,
         ("--edges", "Could not resolve edges 'clicks'")),
    Case("select", "as-of-word", f"{SEL} --out o.parquet --as-of yesterday", ST,
         ("--as-of", "'yesterday' is not a valid integer")),
    Case("select", "relations-unknown", f"{SEL} --out o.parquet --stages graph --relations buy",
         ST, ("relation 'buy'",)),
    Case("select", "stages-unknown", f"{SEL} --out o.parquet --stages graph,magic", ST,
         ("Could not resolve stage 'magic'", "knn")),
    Case("select", "stages-twice", f"{SEL} --out o.parquet --stages graph,graph", ST,
         ("name a stage twice",)),
    Case("select", "stages-empty", f"{SEL} --out o.parquet --stages ,", ST, ("stages is empty",)),
    Case("select", "seed-negative", f"{SEL} --out o.parquet --seed -1", ST,
         ("seed must be an integer >= 0, got -1",)),
    Case("select", "seed-word", f"{SEL} --out o.parquet --seed x", ST, ("--seed", "'x'")),
    Case("select", "missing-out", "select --source s.parquet --target t.parquet", ST,
         ("Missing option '--out'",)),
    Case("select", "missing-target", "select --source s.parquet --out o.parquet", ST,
         ("Missing option '--target'",)),
    # -- select: the YAML config ---------------------------------------------------------------
    Case("select", "yaml-knn-threshold-2", f"{SEL} --out o.parquet --config c.yaml",
         {**ST, "c.yaml": text("knn: {threshold: 2}\n")},
         ("c.yaml: knn: threshold must be a number in [-1.0, 1.0], got 2",)),
    Case("select", "yaml-da-threshold-1.5", f"{SEL} --out o.parquet --config c.yaml",
         {**ST, "c.yaml": text("da: {threshold: 1.5}\n")}, ("c.yaml: da:", "[0.0, 1.0]")),
    Case("select", "yaml-unknown-key", f"{SEL} --out o.parquet --config c.yaml",
         {**ST, "c.yaml": text("knn: {kk: 5}\n")}, ("c.yaml: knn: unknown key 'kk'", "threshold")),
    Case("select", "yaml-unknown-top-key", f"{SEL} --out o.parquet --config c.yaml",
         {**ST, "c.yaml": text("hops: 2\n")}, ("c.yaml: unknown key 'hops'", "graph")),
    Case("select", "yaml-empty", f"{SEL} --out o.parquet --config c.yaml",
         {**ST, "c.yaml": text("")}, ("c.yaml: the config is empty",)),
    Case("select", "yaml-not-a-mapping", f"{SEL} --out o.parquet --config c.yaml",
         {**ST, "c.yaml": text("- graph\n")}, ("c.yaml must be a mapping, got list",)),
    Case("select", "yaml-syntax-error", f"{SEL} --out o.parquet --config c.yaml",
         {**ST, "c.yaml": text("knn: {k: [\n")}, ("c.yaml: not valid YAML",)),
    Case("select", "yaml-missing", f"{SEL} --out o.parquet --config c.yaml", ST,
         ("c.yaml: cannot read the config (No such file or directory)",)),
    Case("select", "yaml-hops-101", f"{SEL} --out o.parquet --config c.yaml",
         {**ST, "c.yaml": text("graph: {num_hops: 101}\n")}, ("c.yaml: graph:", "<= 100")),
    Case("select", "yaml-max-user-rows-0", f"{SEL} --out o.parquet --config c.yaml",
         {**ST, "c.yaml": text("graph: {max_user_rows: 0}\n")}, ("c.yaml: graph:",
                                                                  "max_user_rows")),
    Case("select", "flag-error-names-the-flag-not-the-yaml", f"{SEL} --out o.parquet "
         "--config c.yaml --knn-threshold 3", {**ST, "c.yaml": text("seed: 1\n")},
         ("--knn-threshold: threshold",)),
    # -- select: logs, truth and degenerate selections -------------------------------------------
    Case("select", "target-four-rows", f"{SEL} --out o.parquet",
         {"s.parquet": src(), "t.parquet": parquet(table(SOURCE).slice(0, 4))},
         ("t.parquet", "the target has 4 rows")),
    Case("select", "nothing-shared", f"{SEL} --out o.parquet",
         {"s.parquet": src(), "t.parquet": tgt(user_id=[7, 8, 9, 7, 8], item_id=[70] * 5)},
         ("no user and no item shared between s.parquet and t.parquet",)),
    Case("select", "source-milliseconds", f"{SEL} --out o.parquet",
         {"s.parquet": src(ts=MS), "t.parquet": tgt()}, ("s.parquet", "milliseconds")),
    Case("select", "truth-wrong-length", f"{SEL} --out o.parquet --stages graph "
         "--truth truth.parquet",
         {**ST, "truth.parquet": parquet(pa.table({"in_target_community": [True] * 3}))},
         ("truth.parquet",)),
    Case("select", "empty-after-graph", f"{SEL} --out o.parquet --stages graph --hops 0",
         {"s.parquet": src(item_id=[11, 11, 12, 11, 12]), "t.parquet": tgt()},
         ("the selection is empty: the graph stage kept none of 5 candidate rows",
          "within 0 hops of the 1 seed users and 0 seed items")),
    Case("select", "too-few-candidates-for-da", f"{SEL} --out o.parquet --stages graph,da "
         "--hops 0 --da-threshold 1", ST,
         ("the graph stage left 1 candidate rows, too few for the da stage",
          "da.cv 5 needs at least 5 candidates")),
    Case("select", "empty-after-knn-rule", f"{SEL} --out o.parquet --stages knn --knn-k 1 "
         "--knn-threshold 1", {"s.parquet": src(item_id=[11, 11, 12, 11, 12]), "t.parquet": tgt()},
         (("the selection is empty: the knn stage kept none of 5 candidate rows: its rule "
           "knn_score >= 1 kept none"),)),
    # -- expand ------------------------------------------------------------------------------------
    Case("expand", "out-is-target", f"{EXP} --out t.parquet", ST,
         ("--out t.parquet", "is the input --target t.parquet", "destroy")),
    Case("expand", "out-is-dot-source", f"{EXP} --out ./s.parquet", ST,
         ("--out ./s.parquet", "is the input --source s.parquet")),
    Case("expand", "out-is-config", f"{EXP} --out c.parquet --config c.parquet",
         {**ST, "c.parquet": text("seed: 1\n")}, ("--out c.parquet", "is the input --config")),
    Case("expand", "out-inside-source-folder", "expand --source logs --target t.parquet "
         "--out logs/nodes.parquet", LOGS, ("--out logs/nodes.parquet", "inside the input")),
    Case("expand", "out-extension-unknown", f"{EXP} --out nodes.json", ST, ("nodes.json",)),
    Case("expand", "out-parent-missing", f"{EXP} --out no/n.parquet", ST,
         ("parent directory no does not exist",)),
    Case("expand", "missing-out", "expand --source s.parquet --target t.parquet", ST,
         ("Missing option '--out'",)),
    Case("expand", "hops-101", f"{EXP} --out n.parquet --hops 101", ST, ("--hops", "<= 100")),
    Case("expand", "hops-minus-1", f"{EXP} --out n.parquet --hops -1", ST, ("--hops", "got -1")),
    Case("expand", "fanout-minus-1", f"{EXP} --out n.parquet --fanout -1", ST,
         ("--fanout", "got -1")),
    Case("expand", "max-degree-word", f"{EXP} --out n.parquet --max-degree x", ST,
         ("--max-degree",)),
    Case("expand", "max-user-rows-0", f"{EXP} --out n.parquet --max-user-rows 0", ST,
         ("--max-user-rows",)),
    Case("expand", "mode-unknown", f"{EXP} --out n.parquet --mode none", ST, ("--mode",)),
    Case("expand", "edges-unknown", f"{EXP} --out n.parquet --edges some", ST, ("--edges",)),
    Case("expand", "relations-unknown", f"{EXP} --out n.parquet --relations buy", ST,
         ("relation 'buy'",)),
    Case("expand", "yaml-graph-bad", f"{EXP} --out n.parquet --config c.yaml",
         {**ST, "c.yaml": text("graph: {fanout: 0}\n")}, ("c.yaml: graph:", "fanout")),
    Case("expand", "yaml-unknown-key", f"{EXP} --out n.parquet --config c.yaml",
         {**ST, "c.yaml": text("graph: {hops: 2}\n")}, ("c.yaml: graph: unknown key 'hops'",)),
    Case("expand", "nothing-shared", f"{EXP} --out n.parquet",
         {"s.parquet": src(), "t.parquet": tgt(user_id=[7, 8, 9, 7, 8], item_id=[70] * 5)},
         ("no user and no item shared between s.parquet and t.parquet",)),
    Case("expand", "source-garbage", f"{EXP} --out n.parquet",
         {"s.parquet": raw(b"junk"), "t.parquet": tgt()}, ("s.parquet", "not a readable")),
    # -- run ---------------------------------------------------------------------------------------
    Case("run", "out-is-config", "run --config r.yaml --out r.yaml", RUN,
         ("--out r.yaml", "is the input --config r.yaml")),
    Case("run", "out-is-dot-config", "run --config r.yaml --out ./r.yaml", RUN,
         ("--out r.yaml", "is the input --config r.yaml")),
    Case("run", "out-is-source", "run --config r.yaml --out s.parquet", RUN,
         ("--out s.parquet", "is the input source s.parquet")),
    Case("run", "plots-is-a-file", "run --config r.yaml --plots s.parquet", RUN,
         ("s.parquet: is a file",)),
    Case("run", "plots-would-overwrite-the-config", "run --config calibration.png --plots .",
         {**RUN, "calibration.png": text(RUN_YAML)}, ("--plots .", "would overwrite")),
    Case("run", "config-missing", "run --config nope.yaml", {}, ("nope.yaml",)),
    Case("run", "config-syntax-error", "run --config r.yaml", {**ST, "r.yaml": text("seeds: [\n")},
         ("r.yaml: not valid YAML at line 2, column 1",)),
    Case("run", "task-unknown", "run --config r.yaml", {**ST, "r.yaml": text("task: rank\n")},
         ("r.yaml: key 'task'", "next_item")),
    Case("run", "next-item-periods", "run --config r.yaml --periods 2",
         {**ST, "r.yaml": text("task: next_item\n")},
         ("--periods does not apply to task: next_item",)),
    Case("run", "next-item-unknown-model", "run --config r.yaml --strategies nope",
         {**ST, "r.yaml": text("task: next_item\n")}, ("'nope'",)),
    Case("run", "config-empty", "run --config r.yaml", {**ST, "r.yaml": text("")},
         ("r.yaml: the config is empty",)),
    Case("run", "config-comments-only", "run --config r.yaml", {**ST, "r.yaml": text("# x\n")},
         ("r.yaml: the config is empty",)),
    Case("run", "config-knn-threshold-2", "run --config r.yaml",
         {**ST, "r.yaml": text(RUN_YAML + "selection: {knn: {threshold: 2}}\n")},
         ("r.yaml: selection.knn: threshold must be a number in [-1.0, 1.0], got 2",)),
    Case("run", "config-da-threshold-1.5", "run --config r.yaml",
         {**ST, "r.yaml": text(RUN_YAML + "selection: {da: {threshold: 1.5}}\n")},
         ("r.yaml: selection.da:", "[0.0, 1.0]")),
    Case("run", "config-hops-101", "run --config r.yaml",
         {**ST, "r.yaml": text(RUN_YAML + "selection: {graph: {num_hops: 101}}\n")},
         ("r.yaml: selection.graph:", "<= 100")),
    Case("run", "config-source-missing", "run --config r.yaml", {"r.yaml": text(RUN_YAML)},
         ("s.parquet",)),
    Case("run", "seeds-0", "run --config r.yaml --seeds 0", RUN,
         ("--seeds must be an integer >= 1, got 0",)),
    Case("run", "epochs-0", "run --config r.yaml --epochs 0", RUN, ("--epochs", "got 0")),
    Case("run", "periods-0", "run --config r.yaml --periods 0", RUN, ("--periods", "got 0")),
    Case("run", "mode-unknown", "run --config r.yaml --mode sometimes", RUN,
         ("--mode", "'sometimes'")),
    Case("run", "strategy-unknown", "run --config r.yaml --strategies nope", RUN,
         ("Could not resolve strategy 'nope'", "target_only")),
    Case("run", "missing-config", "run", {}, ("Missing option '--config'",)),
    # -- demo --------------------------------------------------------------------------------------
    Case("demo", "scale-0", "demo --scale 0 --no-transfer", {},
         ("--scale must be a number in (0.0, inf], got 0.0",)),
    Case("demo", "scale-negative", "demo --scale -1 --no-transfer", {}, ("--scale", "-1")),
    Case("demo", "scale-word", "demo --scale big", {}, ("--scale", "'big'")),
    Case("demo", "seed-negative", "demo --seed -1 --no-transfer", {},
         ("--seed must be an integer >= 0, got -1",)),
    Case("demo", "out-is-a-file", "demo --out d --no-transfer", {"d": text("mine")},
         ("d: is a file",)),
    Case("demo", "out-parent-missing", "demo --out no/d --no-transfer", {}, ("no/d",)),
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
    # the read path is every command's
    assert counts["read"] >= 60 and counts["validate"] >= 30 and counts["datasets"] >= 30
    assert counts["select"] >= 60 and counts["expand"] >= 15 and counts["run"] >= 15
    assert counts["demo"] >= 5
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
