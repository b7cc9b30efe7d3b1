"""The graph stage on Spark SQL: the in-memory stage's hops and rows, exactly, on a cluster.

The graph stage (:class:`graphsel.select.expansion.GraphExpansion`, ``--stages graph``) is a
sequence of joins, so it runs on DataFrames with nothing home-made. The Spark engine takes
the stage itself: its ``get_params()`` are the options and its ``check_params()`` checks them
(:func:`spark_params`), so no default or rule is restated here. Two parameters draw at
random in memory, and Spark cannot reproduce numpy's draws, so they are refused:
``fanout`` must be None and ``max_user_rows`` None (``--max-user-rows none``).

1. **read and validate** (:func:`read_log`, :func:`read_pair`): Parquet paths or
   ``table:db.name``; one aggregation pass checks what
   :func:`graphsel.data.log.validate_table` checks and raises the same one-line
   :class:`~graphsel.errors.InputError` (the row it names is the row number the in-memory
   reader would give: files of a directory in name order, rows in file order). Every row
   carries that number in the column ``_row``;
2. **edges**: one per distinct ``(user, item, relation)`` of the rows that make edges, kept
   when its earliest row is before ``as_of``; a pair in two relations is two parallel edges,
   as in :class:`graphsel.graph.bipartite.Adjacency`;
3. **degrees and the hub cap**: each edge carries the degrees of both its ends (degree
   tables joined back: the rows are shuffled once by user, the edges once by item, no
   node's edges are held in memory together), and for ``"auto"`` a degree
   histogram is collected to the driver (:func:`graphsel.engines.histogram.auto_max_degree`
   reproduces numpy's percentile from it, float for float);
4. **expansion** (:func:`expand`), per hop: the hubs leave the frontier (as an edge filter:
   the frontier side's degree at most the cap), semi-join the edges on the frontier,
   anti-join what was reached, and cut the lineage with a checkpoint. Node sets whose known
   size fits ``spark.sql.autoBroadcastJoinThreshold`` are broadcast;
5. **rows** (:func:`graph_select`): source rows left-joined to the reached users and items,
   kept by ``mode``, sorted by ``_row``: collected, they are the in-memory selection's rows
   in its order.

``docs/scale.md`` gives what each step costs, measured, and projected to 10^10 edges.

:func:`run_graph_stage` does all of it; :func:`selection_columns` and :func:`write_rows` write
the selection as the in-memory engine does. :mod:`graphsel.engines.spark_select` runs the
whole selection (``graphsel select --engine spark``: this stage, the domain classifier and
the neighbour scorer). pyspark is imported
inside the functions that need it, never at module import, so that ``import graphsel`` (and
the test suite's doctest collection) works without pyspark or Java.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import numpy as np

from graphsel.data.log import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from graphsel.engines.histogram import auto_max_degree
from graphsel.errors import InputError, choice_error
from graphsel.graph.bipartite import is_one_relation
from graphsel.graph.build import CLICK, relation
from graphsel.select.expansion import GraphExpansion, GraphReport, HopCount
from graphsel.select.pipeline import DEFAULT_STAGES, OUTPUT_COLUMNS
from graphsel.select.stage import STAGES

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType

__all__ = [
    "HOP_COLUMN",
    "ROW_COLUMN",
    "SMALL_CONF",
    "TABLE_PREFIX",
    "SparkExpansion",
    "SparkGraphStage",
    "SparkLog",
    "expand",
    "graph_select",
    "local_path",
    "read_log",
    "read_pair",
    "run_graph_stage",
    "selection_columns",
    "spark_params",
    "spark_session",
    "write_rows",
]

HOP_COLUMN: str = GraphExpansion.SCORES[0].column
"""The graph stage's score column (``hop``, int32), as the in-memory selection writes it."""

ROW_COLUMN = "_row"
"""The column holding each row's number in its log (what the in-memory reader numbers)."""

TABLE_PREFIX = "table:"
"""A source written ``table:db.name`` is read with ``spark.table("db.name")``."""

SMALL_CONF: dict[str, str] = {
    "spark.driver.memory": "512m",
    "spark.sql.shuffle.partitions": "1",
    "spark.default.parallelism": "1",
    "spark.sql.adaptive.enabled": "false",
    "spark.driver.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
    "spark.sql.autoBroadcastJoinThreshold": "-1",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}
"""A small local session for tests (``master="local[1]"``): starts in about 6 s.

Serial GC and the C1 JIT start faster than the defaults; one shuffle partition and no
adaptive execution avoid scheduling hundreds of empty tasks on tiny inputs, and on tiny
tables broadcasting one side of a join costs a job of its own (about 40% of an expansion's
time measured here), more than the sort-merge join it saves. No code generation: on
thousands of rows, compiling every query's generated Java costs more than interpreting
it (the Spark tests took about a fifth less CPU time without it).
"""

_LOCAL_DEFAULTS: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
}

_USER, _ITEM = "user_id", "item_id"
_USER_HOP, _ITEM_HOP = "_user_hop", "_item_hop"
_DEGREE = "_degree"
_USER_DEGREE, _ITEM_DEGREE = "_user_degree", "_item_degree"
_RELATION = "_relation"
_EDGES = "_edges"


# --------------------------------------------------------------------------------------------
# Session
# --------------------------------------------------------------------------------------------


def spark_session(master: str | None = None, conf: Mapping[str, Any] | None = None,
                  *, app_name: str = "graphsel") -> SparkSession:
    """A Spark session with graphsel's defaults, or the running one.

    Args:
        master: where to run: ``"local[*]"`` (every core of this machine), ``"local[2]"``,
            or a cluster (``"yarn"``, ``"spark://host:7077"``, ``"k8s://..."``). Default
            None: the master ``spark-submit`` was given when this process runs under it,
            else ``"local[*]"``. A master given here wins over ``spark-submit``'s.
        conf: Spark settings passed through as ``--conf key=value`` would be (default none),
            e.g. ``{"spark.driver.memory": "4g"}`` or :data:`SMALL_CONF`. For local masters
            they override graphsel's defaults: no web UI, UTC session time zone, no
            progress bars, ``2 x cores`` shuffle partitions, and Python workers on this
            interpreter (``PYSPARK_PYTHON``, unless set; on a cluster, point it or
            ``spark.pyspark.python`` at a Python with ``graphsel[spark]`` installed).

    Returns:
        The session. A session already running in this process is returned as it is:
        settings that only apply at JVM start (``spark.driver.memory``) are then ignored.

    Raises:
        InputError: if pyspark is not installed or Java cannot be found.
    """
    builder = _pyspark_sql().SparkSession.builder.appName(app_name)
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit started this process
    if master is None and not under_submit:
        master = "local[*]"
    if master is not None:
        builder = builder.master(master)
    settings: dict[str, str] = {}
    if master is not None and master.startswith("local"):
        settings.update(_LOCAL_DEFAULTS)
        settings["spark.sql.shuffle.partitions"] = str(2 * _local_cores(master))
        # the Python workers that score rows (da, knn) run this interpreter (with graphsel
        # and its dependencies), not the `python3` on the PATH; read when the context starts
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings.update({key: str(value) for key, value in (conf or {}).items()})
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _local_cores(master: str) -> int:
    inside = master[master.find("[") + 1:master.find("]")] if "[" in master else "1"
    if inside.startswith("*") or not inside.split(",")[0].isdigit():
        return os.cpu_count() or 1
    return max(1, int(inside.split(",")[0]))


def _pyspark_sql() -> Any:
    """``pyspark.sql``, or an :class:`InputError` saying what to install."""
    try:
        import pyspark.sql
    except ImportError:
        raise InputError("the Spark engine needs pyspark: pip install 'graphsel[spark]' "
                         "(and Java 17)") from None
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise InputError("the Spark engine needs Java 17: install it (e.g. apt-get install "
                         "openjdk-17-jre-headless) or set JAVA_HOME")
    return pyspark.sql


def _functions() -> Any:
    from pyspark.sql import functions

    return functions


def _spark_errors() -> tuple[type[BaseException], ...]:
    """What Spark raises for bad input: its analysis errors and errors from the JVM."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    return (PySparkException, Py4JError)


# --------------------------------------------------------------------------------------------
# Reading and validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SparkLog:
    """A validated interaction log as a DataFrame.

    Attributes:
        frame: every column of the log plus ``_row`` (int64), the row's number in the log.
        name: where it came from (the path as given, or ``table:db.name``), for messages.
        columns: the log's own columns, in order (``frame`` without ``_row``).
        rows: the rows of the log.
    """

    frame: DataFrame = field(repr=False)
    name: str
    columns: tuple[str, ...]
    rows: int

    @property
    def has_behavior(self) -> bool:
        return "behavior" in self.columns

    def id_kind(self, column: str) -> str:
        """``"integer"`` or ``"string"``: the kind of ids in ``user_id`` or ``item_id``."""
        return "integer" if _is_integer(self.frame.schema[column].dataType) else "string"


def read_log(spark: SparkSession, source: str | os.PathLike[str], *,
             validate: bool = True) -> SparkLog:
    """Reads a log from Parquet (a file or a directory) or a table, and validates it.

    One aggregation pass, grouped by file, both numbers the rows and finds the first bad row
    of every check.

    Args:
        spark: the session.
        source: a Parquet path (local, ``hdfs://``, ``s3a://``, ...) or ``table:db.name``.
        validate: check the schema and values (default True).

    Returns:
        A :class:`SparkLog`.

    Raises:
        InputError: the in-memory reader's one-line message (see
            :func:`graphsel.data.log.validate_table`), naming ``source``, the column and
            the first bad row.
    """
    name = str(source)
    if name.startswith(TABLE_PREFIX):
        frame = _read_table(spark, name)
    else:
        name = _path_name(name)
        frame = _read_parquet(name, spark)
    numbered = _with_file_positions(frame)
    columns = tuple(frame.columns)
    checks = _checks(frame) if validate else _Checks()
    try:
        offsets, first = checks.scan(numbered)
    except _spark_errors() as exc:  # unreadable input
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        what = "table" if name.startswith(TABLE_PREFIX) else "Parquet file"
        raise InputError(f"{name}: not a readable {what} ({reason})") from None
    log = SparkLog(_number_rows(spark, numbered, columns, offsets), name, columns,
                   int(first["rows"] or 0))
    if validate:
        _raise_first_error(log, first)
    return log


# Up to this many files the row offsets are a literal map in the plan (no job); above it a
# broadcast join (one job per use).
_MAP_FILES = 10_000


def _number_rows(spark: SparkSession, numbered: DataFrame, columns: tuple[str, ...],
                 offsets: list[tuple[str, int]]) -> DataFrame:
    """``columns`` plus ``_row``: the rows before the row's file plus its place in the file."""
    functions = _functions()
    in_file = functions.col("_in_file")
    kept = [functions.col(c) for c in columns]
    if len(offsets) <= _MAP_FILES:
        pairs = [functions.lit(v) for file, offset in offsets for v in (file, offset)]
        offset = (functions.create_map(*pairs)[functions.col("_file")] if pairs
                  else functions.lit(0))
        return numbered.select(*kept, (offset + in_file).cast("long").alias(ROW_COLUMN))
    offset_frame = spark.createDataFrame(offsets, "_file string, _offset long")
    row = (functions.col("_offset") + in_file).cast("long")
    return (numbered.join(functions.broadcast(offset_frame), "_file")
            .select(*kept, row.alias(ROW_COLUMN)))


def _path_name(path: str) -> str:
    """The path as the in-memory reader names it (``str(Path(path))`` for local paths)."""
    if "://" in path or path.startswith("file:"):
        return path
    return str(Path(path))


def local_path(path: str | os.PathLike[str]) -> Path | None:
    """``path`` on this machine's file system, or None for a table (``table:db.name``) or
    another file system (``hdfs://``, ``s3a://``, ...).

    >>> local_path("logs/source.parquet"), local_path("table:db.clicks")
    (PosixPath('logs/source.parquet'), None)
    """
    path = str(path)
    if path.startswith(TABLE_PREFIX):
        return None
    if "://" not in path and not path.startswith("file:"):
        return Path(path)
    if path.startswith("file:"):
        return Path(unquote(urlparse(path).path))
    return None


def _read_parquet(path: str, spark: SparkSession) -> DataFrame:
    local = local_path(path)
    if local is not None:
        if not local.exists():
            raise InputError(f"{path}: no such file or directory")
        if local.is_file() and local.stat().st_size == 0:
            raise InputError(f"{path}: empty file")
        if local.is_dir() and not any(p.suffix in (".parquet", ".pq") for p in local.rglob("*")):
            raise InputError(f"{path}: is a directory with no .parquet files, expected a log "
                             f"file or a directory of Parquet files")
        if local.is_file() and local.name.lower().endswith((".csv", ".csv.gz", ".tsv",
                                                             ".tsv.gz")):
            raise InputError(f"{path}: the Spark engine reads Parquet files or tables; convert "
                             f"this CSV first (graphsel's local engine reads it)")
    try:
        return spark.read.parquet(path)
    except _spark_errors() as exc:  # not Parquet, no such path on a cluster
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a readable Parquet file ({reason})") from None


def _read_table(spark: SparkSession, name: str) -> DataFrame:
    try:
        return spark.table(name[len(TABLE_PREFIX):])
    except _spark_errors() as exc:  # no such table
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{name}: not a readable table ({reason})") from None


def _with_file_positions(frame: DataFrame) -> DataFrame:
    """``frame`` plus ``_file`` and ``_in_file``, the row's file and its position there.

    Parquet files (and tables stored as them) have both in their ``_metadata``; anything
    else (a view, a Hive SerDe table) is one "file" numbered in scan order, increasing but
    not dense, which only row numbers in messages can tell.
    """
    functions = _functions()
    try:
        return frame.select("*", functions.col("_metadata.file_path").alias("_file"),
                            functions.col("_metadata.row_index").alias("_in_file"))
    except _spark_errors():  # no _metadata column
        return frame.select("*", functions.lit("").alias("_file"),
                            functions.monotonically_increasing_id().alias("_in_file"))


# Arrow's names of Spark's types, so that messages read as the in-memory reader's.
_ARROW_NAMES = {
    "ByteType": "int8", "ShortType": "int16", "IntegerType": "int32", "LongType": "int64",
    "FloatType": "float", "DoubleType": "double", "BooleanType": "bool", "StringType": "string",
    "BinaryType": "binary", "DateType": "date32[day]", "TimestampType": "timestamp[us, tz=UTC]",
    "TimestampNTZType": "timestamp[us]", "NullType": "null",
}


def _type_name(data_type: DataType) -> str:
    name = type(data_type).__name__
    if name == "DecimalType":
        return f"decimal128({data_type.precision}, {data_type.scale})"  # type: ignore[attr-defined]
    return _ARROW_NAMES.get(name, data_type.simpleString())


def _is_integer(data_type: DataType) -> bool:
    return type(data_type).__name__ in ("ByteType", "ShortType", "IntegerType", "LongType")


def _is_string(data_type: DataType) -> bool:
    return type(data_type).__name__ in ("StringType", "CharType", "VarcharType")


def _is_float(data_type: DataType) -> bool:
    return type(data_type).__name__ in ("FloatType", "DoubleType")


def _is_boolean(data_type: DataType) -> bool:
    return type(data_type).__name__ == "BooleanType"


@dataclass
class _Checks:
    """Row conditions whose first row to find, with the rows per file, in one pass."""

    names: list[str] = field(default_factory=list)
    conditions: list[Column] = field(default_factory=list)

    def add(self, name: str, condition: Column) -> None:
        self.names.append(name)
        self.conditions.append(condition)

    def scan(self, numbered: DataFrame) -> tuple[list[tuple[str, int]], dict[str, int | None]]:
        """Rows before each file (files in path order) and each check's first row.

        The in-memory reader concatenates a directory's files sorted by name: numbering rows
        the same way makes ``_row``, and every row an error names, agree with it.

        Returns:
            ``([(file, offset), ...], {check name: first row or None, "rows": total})``.
        """
        functions = _functions()
        position = functions.col("_in_file")
        aggregates = [functions.count(functions.lit(1)).alias("rows")]
        aggregates += [functions.min(functions.when(condition, position)).alias(f"c{i}")
                       for i, condition in enumerate(self.conditions)]
        per_file = numbered.groupBy("_file").agg(*aggregates).collect()
        per_file.sort(key=lambda r: unquote(r["_file"]))
        offsets: list[tuple[str, int]] = []
        first: dict[str, int | None] = dict.fromkeys(self.names)
        total = 0
        for result in per_file:
            offsets.append((result["_file"], total))
            for i, name in enumerate(self.names):
                if first[name] is None and result[f"c{i}"] is not None:
                    first[name] = total + int(result[f"c{i}"])
            total += int(result["rows"])
        first["rows"] = total
        return offsets, first


def _value_at(log: SparkLog, column: str, row: int) -> Any:
    found = log.frame.filter(_functions().col(ROW_COLUMN) == row).select(column).first()
    return None if found is None else found[0]


def _checks(frame: DataFrame) -> _Checks:
    """The value checks of :func:`graphsel.data.log.validate_table` on well-typed columns."""
    functions = _functions()
    types = {f.name: f.dataType for f in frame.schema.fields}
    checks = _Checks()
    for col in (_USER, _ITEM):
        if col in types and (_is_integer(types[col]) or _is_string(types[col])):
            checks.add(f"{col}:null", functions.col(col).isNull())
            if _is_string(types[col]):
                checks.add(f"{col}:empty", functions.length(col) == 0)
    if "ts" in types:
        ts = functions.col("ts")
        if _is_integer(types["ts"]):
            checks.add("ts:null", ts.isNull())
            checks.add("ts:negative", ts < 0)
        else:
            checks.add("ts:present", ts.isNotNull())
            if _is_float(types["ts"]):
                checks.add("ts:fractional", ts.isNotNull() & (
                    functions.isnan(ts) | (functions.abs(ts) == float("inf"))
                    | (ts != functions.floor(ts))))
    if "label" in types:
        label = functions.col("label")
        checks.add("label:null", label.isNull())
        if _is_integer(types["label"]) or _is_float(types["label"]):
            checks.add("label:outside", label.isNotNull()
                       & ~label.cast("double").isin(0.0, 1.0))
    for col in ("domain",) + OPTIONAL_COLUMNS:
        if col in types and _is_string(types[col]):
            checks.add(f"{col}:null", functions.col(col).isNull())
            checks.add(f"{col}:empty", functions.length(col) == 0)
    return checks


def _raise_first_error(log: SparkLog, first: dict[str, int | None]) -> None:
    """Raises the in-memory reader's first error for ``log``, in its order of checks.

    Args:
        first: the first bad row of each check of :func:`_checks` and ``"rows"``.
    """
    name = log.name
    types = {f.name: f.dataType for f in log.frame.schema.fields if f.name != ROW_COLUMN}

    if first["rows"] == 0:
        raise InputError(f"{name}: no rows (empty log)")
    missing = [c for c in REQUIRED_COLUMNS if c not in types]
    if missing:
        raise InputError(f"{name}: missing column '{missing[0]}' (has: {', '.join(log.columns)})")
    duplicated = sorted({c for c in log.columns if log.columns.count(c) > 1})
    if duplicated:
        raise InputError(f"{name}: column '{duplicated[0]}' appears more than once")
    for col in (_USER, _ITEM):
        if not (_is_integer(types[col]) or _is_string(types[col])):
            raise InputError(f"{name}: column '{col}' has type {_type_name(types[col])}, "
                             f"expected integer or string (e.g. {_value_at(log, col, 0)!r})")
        if first[f"{col}:null"] is not None:
            raise InputError(f"{name}: column '{col}' has a null id at row {first[f'{col}:null']}")
        if first.get(f"{col}:empty") is not None:
            raise InputError(f"{name}: column '{col}' has an empty id at row "
                             f"{first[f'{col}:empty']}")
    if not _is_integer(types["ts"]):
        example_row = first.get("ts:fractional")
        if example_row is None:
            example_row = first["ts:present"]
        example = None if example_row is None else _value_at(log, "ts", example_row)
        raise InputError(f"{name}: column 'ts' has type {_type_name(types['ts'])}, expected "
                         f"integer Unix seconds (e.g. {example!r})")
    if first["ts:null"] is not None:
        raise InputError(f"{name}: column 'ts' has a null at row {first['ts:null']}")
    if (negative := first["ts:negative"]) is not None:
        raise InputError(f"{name}: column 'ts' has negative value "
                         f"{_value_at(log, 'ts', negative)} at row {negative}")
    label_type = types["label"]
    if not (_is_integer(label_type) or _is_boolean(label_type) or _is_float(label_type)):
        raise InputError(f"{name}: column 'label' has type {_type_name(label_type)}, expected "
                         f"0/1 (e.g. {_value_at(log, 'label', 0)!r})")
    if first["label:null"] is not None:
        raise InputError(f"{name}: column 'label' has a null at row {first['label:null']}")
    if (outside := first.get("label:outside")) is not None:
        raise InputError(f"{name}: column 'label' has value "
                         f"{_value_at(log, 'label', outside)!r} at row {outside}, expected 0 or 1")
    for col in ("domain",) + OPTIONAL_COLUMNS:
        if col not in types:
            continue
        if not _is_string(types[col]):
            raise InputError(f"{name}: column '{col}' has type {_type_name(types[col])}, "
                             f"expected string (e.g. {_value_at(log, col, 0)!r})")
        if first[f"{col}:null"] is not None:
            raise InputError(f"{name}: column '{col}' has a null at row {first[f'{col}:null']}")
        if first[f"{col}:empty"] is not None:
            raise InputError(f"{name}: column '{col}' has an empty value at row "
                             f"{first[f'{col}:empty']}")
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    for col, data_type in types.items():
        if col in known:
            continue
        if not (_is_integer(data_type) or _is_string(data_type) or _is_float(data_type)
                or _is_boolean(data_type)):
            raise InputError(f"{name}: feature column '{col}' has type {_type_name(data_type)}, "
                             f"expected integer, string (categorical) or float (numeric)")


def read_pair(spark: SparkSession, source: str | os.PathLike[str],
              target: str | os.PathLike[str]) -> tuple[SparkLog, SparkLog]:
    """Reads and validates a source and a target log, as :func:`graphsel.data.log.read_pair`.

    Raises:
        InputError: if either log is invalid, their id types differ, or they share no user
            and no item (the in-memory messages).
    """
    source_log = read_log(spark, source)
    target_log = read_log(spark, target)
    for col in (_USER, _ITEM):
        kinds = {source_log.name: source_log.id_kind(col), target_log.name: target_log.id_kind(col)}
        if source_log.id_kind(col) != target_log.id_kind(col):
            described = " but ".join(f"{kind} in {name}" for name, kind in kinds.items())
            raise InputError(f"column '{col}' is {described}; ids must have one type")
    return source_log, target_log


# --------------------------------------------------------------------------------------------
# Expansion
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SparkExpansion:
    """What :func:`expand` reached.

    Attributes:
        users: ``(user_id, hop)``, one row per reached user, hop int32 (0 for the seeds).
        items: ``(item_id, hop)``, the same for items.
        max_degree: the hub cap used (None: no cap).
        hop_counts: ``num_hops + 1`` pairs ``(users, items)`` first reached at each hop.
        capped: ``(users, items)`` reached before the last hop with a degree above the cap.
        relations: the relation names walked (None: every relation of the source).
    """

    users: DataFrame = field(repr=False)
    items: DataFrame = field(repr=False)
    max_degree: float | None
    hop_counts: list[tuple[int, int]]
    capped: tuple[int, int]
    relations: list[str] | None

    def report(self) -> GraphReport:
        """The graph stage's report, as the in-memory ``report_`` (no per-user cap; its
        ``warning`` is not computed on Spark)."""
        return GraphReport(*self.hop_counts[0], self.max_degree,
                           tuple(HopCount(hop, users, items) for hop, (users, items)
                                 in enumerate(self.hop_counts)),
                           *self.capped)


class _Checkpointer:
    """Materialises a DataFrame and cuts its lineage, locally or to the checkpoint dir."""

    def __init__(self, kind: str) -> None:
        if kind not in ("local", "reliable"):
            raise choice_error("checkpoint", kind, ("local", "reliable"))
        self.kind = kind

    def __call__(self, frame: DataFrame, *, eager: bool = True) -> DataFrame:
        """``frame`` checkpointed.

        Args:
            frame: the frame to materialise.
            eager: compute it now, in a job of its own (default True). False, for a frame
                the caller reads whole at once (e.g. counts it): a local checkpoint is then
                stored by that job, one job instead of two (a reliable one is still written
                at once: written lazily, it would be computed twice).
        """
        if self.kind == "local":
            return frame.localCheckpoint(eager=eager)
        return frame.checkpoint(eager=True)


def spark_params(stage: GraphExpansion) -> dict[str, Any]:
    """The parameters of ``stage`` the Spark engine runs, checked by the stage itself.

    Args:
        stage: an unfitted :class:`~graphsel.select.expansion.GraphExpansion`.

    Returns:
        ``stage.get_params()``.

    Raises:
        InputError: a bad parameter (the stage's own message), or ``fanout`` or
            ``max_user_rows`` other than None: both draw rows at random in memory, a draw
            Spark cannot reproduce.

    >>> spark_params(GraphExpansion(max_user_rows=None))["num_hops"]
    2
    >>> spark_params(GraphExpansion())
    Traceback (most recent call last):
    ...
    graphsel.errors.InputError: max_user_rows='auto' is not supported by the Spark engine (the in-memory stage draws the kept rows at random); pass --max-user-rows none (max_user_rows: null)
    """
    stage.check_params()
    params = stage.get_params()
    if params["max_user_rows"] is not None:
        raise InputError(f"max_user_rows={params['max_user_rows']!r} is not supported by the "
                         f"Spark engine (the in-memory stage draws the kept rows at random); "
                         f"pass --max-user-rows none (max_user_rows: null)")
    if params["fanout"] is not None:
        raise InputError(f"fanout={params['fanout']!r} is not supported by the Spark engine "
                         f"(the in-memory stage draws the hub edges at random); leave --fanout "
                         f"out, or use --engine local")
    return params


def _edge_rows(source: SparkLog,
               params: Mapping[str, Any]) -> tuple[DataFrame, list[str] | None]:
    """The rows that make edges, with their relation, and the relations asked for (or None).

    Raises:
        InputError: for a relation the rows that make edges do not have (the in-memory
            :meth:`graphsel.graph.bipartite.BipartiteGraph.resolve_relations` message).
    """
    functions = _functions()
    rows = source.frame
    if params["edges"] == "positive":
        rows = rows.filter(functions.col("label").cast("double") == 1.0)
    behavior = (functions.col("behavior") if source.has_behavior
                else functions.lit(CLICK[1]))
    rows = rows.select(_USER, _ITEM, "ts", behavior.alias(_RELATION))
    if params["relations"] is None:  # every relation: no need to list them (a pass over the rows)
        return rows, None
    given = params["relations"]
    names = [given] if is_one_relation(given) else list(given)  # as resolve_relations reads it
    wanted: list[str] = []
    for name in names:
        resolved = relation(name)[1]
        if resolved not in wanted:
            wanted.append(resolved)
    present = sorted(r[0] for r in rows.select(_RELATION).distinct().collect())
    for name in wanted:
        if name not in present:
            raise choice_error("relation", name, present)
    if not wanted and present:
        raise InputError(f"relations is empty; choose among {present}")
    return rows.filter(functions.col(_RELATION).isin(wanted)), wanted


def expand(source: SparkLog, target: SparkLog, stage: GraphExpansion,
           *, checkpoint: str = "local",
           progress: Callable[[str], None] | None = None) -> SparkExpansion:
    """Expands ``stage.num_hops`` hops from the users and items the two logs share.

    Equal to ``stage.fit(source, target).expansion_`` in memory
    (:func:`graphsel.graph.expansion.expand` on the source's graph, seeded by
    :func:`~graphsel.graph.expansion.shared_seeds`, hubs capped by ``stage.max_degree``,
    ``"auto"`` resolved from a degree histogram).

    Args:
        source: the source log (its rows make the graph).
        target: the target log (its users and items, shared with the source, are the seeds).
        stage: the graph stage whose parameters to run (see :func:`spark_params`).
        checkpoint: how each hop's result is materialised: ``"local"`` (default,
            ``localCheckpoint``: executor storage, fast, lost with an executor) or
            ``"reliable"`` (``checkpoint`` to the context's checkpoint dir, which must be set).
        progress: called with ``"seeds"``, ``"edges"``, ``"cap"``, ``"hop 1"``, ...,
            ``"capped"`` before each phase (default None), e.g. to name Spark job groups.

    Returns:
        A :class:`SparkExpansion`; its ``users`` and ``items`` are materialised.

    Raises:
        InputError: for a bad or unsupported parameter, an unknown relation, or logs that
            share no user and no item.
    """
    functions = _functions()
    params = spark_params(stage)
    materialise = _Checkpointer(checkpoint)
    broadcast_nodes = _broadcast_nodes(source.frame.sparkSession)
    report = progress or (lambda phase: None)
    report("seeds")
    # stored by the job that counts them
    seed_users = materialise(_shared(source, target, _USER), eager=False)
    seed_items = materialise(_shared(source, target, _ITEM), eager=False)
    seeds = _count_pair(seed_users, seed_items)
    if seeds == (0, 0):
        raise InputError(f"no user and no item shared between {source.name} and "
                         f"{target.name}: graph selection needs at least one")

    report("edges")
    rows, relations = _edge_rows(source, params)
    if params["as_of"] is not None:
        # An edge survives the cut iff its earliest row is before it: cutting rows first and
        # then counting distinct relations per pair is the same, with one shuffle, not two.
        rows = rows.filter(functions.col("ts") < params["as_of"])
    # (user, item, parallel edges): one per relation holding the pair, as Adjacency counts,
    # then each edge with the degrees of both its ends, in one materialised table. The
    # pairs are cached while the degrees are joined back: the optimiser prunes and filters
    # each of their three uses differently, so without the cache the rows would be
    # shuffled and the pairs aggregated three times.
    pairs = (rows.repartition(_USER).groupBy(_USER, _ITEM)
             .agg(functions.countDistinct(_RELATION).alias(_EDGES)).persist())
    try:
        edges = materialise(_with_degrees(pairs))
    finally:
        pairs.unpersist()
    report("cap")
    max_degree = _resolve_max_degree(params["max_degree"], edges)
    # A hub is reached but not expanded through: leaving a hub out of the frontier is
    # leaving out the edges whose frontier-side end is over the cap.
    user_edges, item_edges = edges, edges
    if max_degree is not None:
        user_edges = edges.filter(functions.col(_USER_DEGREE) <= max_degree)
        item_edges = edges.filter(functions.col(_ITEM_DEGREE) <= max_degree)

    reached_users, reached_items = [seed_users], [seed_items]
    hop_counts = [seeds]
    for hop in range(1, params["num_hops"] + 1):
        if hop_counts[-1] == (0, 0):  # nothing new to expand from: every later hop is empty
            hop_counts.append((0, 0))
            continue
        report(f"hop {hop}")
        user_counts = [users for users, _ in hop_counts]
        item_counts = [items for _, items in hop_counts]
        new_items = _step(user_edges, _small(reached_users, user_counts, broadcast_nodes)[-1],
                          _USER, _ITEM, _small(reached_items, item_counts, broadcast_nodes))
        new_users = _step(item_edges, _small(reached_items, item_counts, broadcast_nodes)[-1],
                          _ITEM, _USER, _small(reached_users, user_counts, broadcast_nodes))
        reached_users.append(materialise(new_users, eager=False))
        reached_items.append(materialise(new_items, eager=False))
        hop_counts.append(_count_pair(reached_users[-1], reached_items[-1]))
    capped = (0, 0)
    if max_degree is not None and params["num_hops"] > 0:
        report("capped")
        # the hubs of the frontiers (hops 0 .. num_hops - 1): the nodes the cap stopped
        hub_users = edges.filter(functions.col(_USER_DEGREE) > max_degree).select(_USER)
        hub_items = edges.filter(functions.col(_ITEM_DEGREE) > max_degree).select(_ITEM)
        capped = _count_pair(
            _union(reached_users[:params["num_hops"]]).join(hub_users, _USER, "left_semi"),
            _union(reached_items[:params["num_hops"]]).join(hub_items, _ITEM, "left_semi"))
    return SparkExpansion(
        users=_union([_with_hop(part, hop) for hop, part in enumerate(reached_users)]),
        items=_union([_with_hop(part, hop) for hop, part in enumerate(reached_items)]),
        max_degree=max_degree,
        hop_counts=hop_counts,
        capped=capped,
        relations=relations,
    )


def _with_degrees(pairs: DataFrame) -> DataFrame:
    """``(user_id, item_id, _user_degree, _item_degree)``: each pair of ``pairs`` (hash
    partitioned by user, with its parallel edges in ``_edges``) and the degrees of its ends.

    Degrees are aggregations joined back, not window sums: a window holds every edge of a
    node in memory at once (a hub's millions, spilled and read back), a join with a degree
    table streams them past one row. The pairs do not move for the user degrees (they are
    partitioned by user already); the edges then move once by item; the degrees' partial
    sums move too, a few records per node (``docs/scale.md`` has the measured shuffles).
    ``pairs`` should be cached: it is read three times.
    """
    functions = _functions()
    degrees = [pairs.groupBy(side).agg(functions.sum(_EDGES).alias(degree))
               for side, degree in ((_USER, _USER_DEGREE), (_ITEM, _ITEM_DEGREE))]
    # the degree table on the right: the side a sort-merge join buffers per key (one row)
    return (pairs.join(degrees[0], _USER).join(degrees[1], _ITEM)
            .select(_USER, _ITEM, _USER_DEGREE, _ITEM_DEGREE))


# What a reached node (an id, a hop, hash-table overhead) is taken to weigh in a broadcast
# hash table, to hold node sets against spark.sql.autoBroadcastJoinThreshold.
_NODE_BYTES = 64


def _broadcast_nodes(spark: SparkSession) -> int:
    """The most nodes a side of a join may have to be broadcast (0: never).

    Checkpointed node sets carry no size Spark can plan with, but their counts are known:
    they are broadcast (explicitly) under Spark's own ``autoBroadcastJoinThreshold``, at
    ``_NODE_BYTES`` a node (10 MB, the default, is about 160,000 nodes).
    """
    threshold = spark.conf.get("spark.sql.autoBroadcastJoinThreshold") or "10485760"
    text = threshold.strip().lower()
    units = {"b": 1, "k": 2**10, "kb": 2**10, "m": 2**20, "mb": 2**20, "g": 2**30, "gb": 2**30}
    unit = next((u for u in sorted(units, key=len, reverse=True) if text.endswith(u)), "b")
    number = text[:len(text) - len(unit)] if text.endswith(unit) else text
    try:
        limit = int(float(number) * units[unit])
    except ValueError:
        return 0
    return max(0, limit // _NODE_BYTES)


def _small(parts: list[DataFrame], counts: list[int], limit: int) -> list[DataFrame]:
    """``parts`` with a broadcast hint on each whose count is at most ``limit``."""
    broadcast = _functions().broadcast
    return [broadcast(part) if 0 < count <= limit else part
            for part, count in zip(parts, counts)]


def _count_pair(users: DataFrame, items: DataFrame) -> tuple[int, int]:
    """``(users.count(), items.count())`` in one job."""
    functions = _functions()
    side = functions.col("_side")
    sides = (users.select(functions.lit(0).alias("_side"))
             .unionAll(items.select(functions.lit(1).alias("_side"))))
    counted: dict[int, int] = dict(sides.groupBy(side).count().collect())
    return int(counted.get(0, 0)), int(counted.get(1, 0))


def _shared(source: SparkLog, target: SparkLog, column: str) -> DataFrame:
    """The distinct ids of ``column`` in both logs (typed as the source's)."""
    source_type = source.frame.schema[column].dataType
    target_ids = target.frame.select(target.frame[column].cast(source_type).alias(column))
    return (source.frame.select(column).distinct()
            .join(target_ids.distinct(), column, "left_semi"))


def _resolve_max_degree(max_degree: float | str | None, edges: DataFrame) -> float | None:
    """The cap; for ``"auto"`` from the degree histogram of users and items (one job).

    :func:`graphsel.select.expansion.resolve_max_degree` gives the in-memory cap from every
    node's degree; :func:`~graphsel.engines.histogram.auto_max_degree` the same float from
    the histogram (``tests/engines`` holds them equal).
    """
    if max_degree != "auto":
        return None if max_degree is None else float(max_degree)
    functions = _functions()
    degree = functions.col(_DEGREE)
    users = edges.select(_USER, functions.col(_USER_DEGREE).alias(_DEGREE)).distinct()
    items = edges.select(_ITEM, functions.col(_ITEM_DEGREE).alias(_DEGREE)).distinct()
    histogram = (users.select(degree).unionAll(items.select(degree))
                 .groupBy(degree).count().collect())
    return auto_max_degree([int(r[_DEGREE]) for r in histogram],
                           [int(r["count"]) for r in histogram])


def _step(edges: DataFrame, frontier: DataFrame, side: str, other: str,
          reached: list[DataFrame]) -> DataFrame:
    """The nodes of ``other`` with an edge to ``frontier`` and not reached yet."""
    adjacent = edges.join(frontier, side, "left_semi").select(other).distinct()
    for part in reached:
        adjacent = adjacent.join(part, other, "left_anti")
    return adjacent


def _with_hop(nodes: DataFrame, hop: int) -> DataFrame:
    return nodes.withColumn(HOP_COLUMN, _functions().lit(hop).cast("int"))


def _union(parts: list[DataFrame]) -> DataFrame:
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    return union


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------


def graph_select(source: SparkLog, expansion: SparkExpansion, mode: str = "both",
                 *, keep_row: bool = False, ordered: bool = True) -> DataFrame:
    """The source rows an expansion selects, as :func:`graphsel.graph.expansion.graph_select`.

    Args:
        source: the source log the expansion's graph was built from.
        expansion: the result of :func:`expand`.
        mode: ``"both"`` (default: user and item reached, hop the larger), ``"user"``,
            ``"item"`` or ``"any"`` (either reached, hop the smaller).
        keep_row: keep the ``_row`` column (default False).
        ordered: sort the rows by row number (default True). False leaves them in join
            order, for a caller that sorts them later anyway (by ``_row``, with
            ``keep_row``): a sort moves every selected row once more.

    Returns:
        The selected rows: the source's columns (a ``hop`` column of the source replaced),
        then ``_row`` (with ``keep_row``), then ``hop`` int32; ``ordered``, sorted by row
        number: collected, the in-memory order.

    Raises:
        InputError: for an unknown mode.
    """
    from graphsel.graph.expansion import SELECT_MODES

    if mode not in SELECT_MODES:
        raise choice_error("mode", mode, SELECT_MODES)
    functions = _functions()
    users = expansion.users.withColumnRenamed(HOP_COLUMN, _USER_HOP)
    items = expansion.items.withColumnRenamed(HOP_COLUMN, _ITEM_HOP)
    user_hop, item_hop = functions.col(_USER_HOP), functions.col(_ITEM_HOP)
    if mode == "user":
        hop = user_hop
    elif mode == "item":
        hop = item_hop
    elif mode == "both":
        hop = functions.when(user_hop.isNotNull() & item_hop.isNotNull(),
                             functions.greatest(user_hop, item_hop))
    else:  # "any": least() skips nulls, so an unreached end leaves the other's hop
        hop = functions.least(user_hop, item_hop)
    limit = _broadcast_nodes(source.frame.sparkSession)
    [users] = _small([users], [sum(u for u, _ in expansion.hop_counts)], limit)
    [items] = _small([items], [sum(i for _, i in expansion.hop_counts)], limit)
    frame = source.frame
    if mode != "item":
        frame = frame.join(users, _USER, "left")
    if mode != "user":
        frame = frame.join(items, _ITEM, "left")
    kept = [functions.col(c) for c in source.columns if c != HOP_COLUMN]
    if keep_row:
        kept.append(functions.col(ROW_COLUMN))
    order = [functions.col(ROW_COLUMN).alias("_order")] if ordered else []
    selected = (frame.select(*kept, *order, hop.cast("int").alias(HOP_COLUMN))
                .filter(functions.col(HOP_COLUMN).isNotNull()))
    return selected.orderBy("_order").drop("_order") if ordered else selected


# --------------------------------------------------------------------------------------------
# The whole stage
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SparkGraphStage:
    """The graph stage on Spark.

    Attributes:
        source, target: the logs read.
        rows: the selected source rows with ``hop``, in source order (see :func:`graph_select`).
        expansion: the :class:`SparkExpansion` (reached users and items, hop counts).
        report: the stage's :class:`~graphsel.select.expansion.GraphReport`, as the in-memory
            ``report_`` (no per-user cap; ``warning`` is not computed on Spark).
    """

    source: SparkLog = field(repr=False)
    target: SparkLog = field(repr=False)
    rows: DataFrame = field(repr=False)
    expansion: SparkExpansion = field(repr=False)
    report: GraphReport


def run_graph_stage(spark: SparkSession, source: str | os.PathLike[str],
                    target: str | os.PathLike[str], stage: GraphExpansion, *,
                    checkpoint: str = "local",
                    progress: Callable[[str], None] | None = None) -> SparkGraphStage:
    """Reads, validates, expands and selects, as ``stage.fit(source, target)`` in memory.

    Args:
        spark: the session (see :func:`spark_session`).
        source: the source log: a Parquet path or ``table:db.name``.
        target: the target log, likewise.
        stage: the graph stage whose parameters to run (see :func:`spark_params`).
        checkpoint: ``"local"`` (default) or ``"reliable"``, see :func:`expand`.
        progress: see :func:`expand` (default None); also called with ``"read"`` first.

    Returns:
        A :class:`SparkGraphStage` (its rows are not computed yet).

    Raises:
        InputError: bad input or parameters, in the in-memory engine's one-line messages.
    """
    params = spark_params(stage)  # before any work
    (progress or (lambda phase: None))("read")
    source_log, target_log = read_pair(spark, source, target)
    expansion = expand(source_log, target_log, stage, checkpoint=checkpoint, progress=progress)
    return SparkGraphStage(source_log, target_log,
                           graph_select(source_log, expansion, params["mode"]), expansion,
                           expansion.report())


def selection_columns(rows: DataFrame) -> DataFrame:
    """``rows`` as the in-memory selection writes them: the source's columns, then every
    default stage's score (:data:`graphsel.select.pipeline.OUTPUT_COLUMNS`: ``rows``' own
    column where a stage ran, else the stage's fill, e.g. NaN ``p_target``), then ``weight``
    (``rows``' own, else 1: no stage weighs), each of the in-memory type."""
    functions = _functions()
    fills = {score.column: score for name in DEFAULT_STAGES for score in STAGES.get(name).SCORES}
    columns = [functions.col(name) for name in rows.columns if name not in OUTPUT_COLUMNS]
    for name in OUTPUT_COLUMNS:
        score = fills.get(name)
        dtype = _SPARK_TYPES[np.dtype(np.float32 if score is None else score.dtype).str[1:]]
        if name in rows.columns:
            columns.append(functions.col(name).cast(dtype).alias(name))
            continue
        value = 1.0 if score is None else score.fill  # "weight" is the one column not a score
        # a nullable column, as pyarrow writes it (a bare literal is "not null" in Parquet):
        # no label is null, but the optimiser cannot fold that away
        constant = functions.when(functions.col("label").isNotNull(), functions.lit(value))
        columns.append(constant.cast(dtype).alias(name))
    return rows.select(*columns)


_SPARK_TYPES = {"f4": "float", "f8": "double", "i4": "int", "i8": "long"}


def write_rows(rows: DataFrame, out: str | os.PathLike[str],
               inspect: Callable[[str], None] | None = None) -> str:
    """Writes selected rows as a directory of Parquet files, in order (part files by name).

    A local ``out`` is written beside itself and renamed into place, so a failed job never
    leaves a partial selection; an existing ``out`` is replaced only once the new one is
    complete. Other file systems get Spark's own commit protocol (``_SUCCESS`` marks a
    complete directory).

    Args:
        rows: the rows to write.
        out: the directory to write.
        inspect: called with the path written before a local ``out`` is put in place
            (default None); if it raises, nothing is put in place.

    Returns:
        ``out`` as a string.
    """
    out = str(out)
    local = local_path(out)
    if local is None:
        rows.write.mode("overwrite").parquet(out)
        if inspect is not None:
            inspect(out)
        return out
    with _atomic_directory(local) as tmp:
        rows.write.parquet(str(tmp))
        if inspect is not None:
            inspect(str(tmp))
    return out


@contextmanager
def _atomic_directory(path: Path) -> Iterator[Path]:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        if path.is_dir():
            old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            if path.exists():
                path.unlink()
            tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
