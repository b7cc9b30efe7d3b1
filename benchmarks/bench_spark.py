"""Benchmark: the selection in memory vs on Spark local (``make bench-spark``).

For each size (default 1M and 5M source rows of the synthetic default, ``scale`` = rows /
200,000) the logs are written as Parquet once, then each engine runs in a process of its own
what ``graphsel select --stages graph --max-user-rows none --engine local|spark`` runs (or
``--stages graph,da,knn``: ``--stages``), from the Parquet files to the selection written as
Parquet, with the stages' defaults (the per-user cap off, as Spark requires):

- **local**: :func:`graphsel.data.log.read_pair`, then the
  :class:`~graphsel.select.pipeline.SampleSelector` of the stages, then
  :meth:`~graphsel.select.pipeline.Selection.write`;
- **spark**: :func:`graphsel.engines.spark.spark_session` (``--master``, default
  ``local[2]``, and ``--driver-memory``), then
  :func:`graphsel.engines.spark_select.run_selection`.

``--spark-only`` runs the Spark engine alone (a log larger than the in-memory engine holds);
``--chunks N`` writes the source as N files of the synthetic default with seeds 0..N-1, so
that a log of 30M rows is generated 30 / N million rows at a time.

The table gives each phase's wall seconds, the total (without the Spark session's start,
given apart) and its ratio to the local engine measured in the same run, each process's peak
RSS (the Python process's, and the JVM's ``VmHWM`` for Spark) and the ratio of Spark's two
together to the local engine's, and whether the two selections are equal (every column of
every row, in order). Wall seconds depend on what else runs on the machine: the load average
is printed before and after.

Run ``python benchmarks/bench_spark.py`` (a few minutes on 2 cores), or ``--small`` for a
10,000-row log on a ``local[1]`` test session in about 30 s (what the test suite runs, so
this script cannot rot).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

FULL_SIZES = (1_000_000, 5_000_000)
SMALL_SIZES = (10_000,)
ROWS_AT_SCALE_1 = 200_000  # the synthetic default's source rows at scale 1


def _high_water_mb(pid: int | str = "self") -> float | None:
    """A process's peak RSS (``VmHWM``) from /proc (Linux); None elsewhere.

    Not ``getrusage``: its ``ru_maxrss`` survives ``execve``, so a worker started by vfork
    from this (larger) process would report this process's peak.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _peak_rss_mb() -> float:
    peak = _high_water_mb()
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _jvm_peak_mb(spark: Any) -> float | None:
    """The JVM's peak RSS (``VmHWM``)."""
    return _high_water_mb(int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()))


def selection_config(stages: list[str]) -> Any:
    """What both engines run: the stages' defaults, the per-user cap off."""
    from graphsel.select.config import SelectionConfig

    return SelectionConfig(tuple(stages), {"graph": {"max_user_rows": None}}
                           if "graph" in stages else {})


def run_local(source: str, target: str, out: str, stages: list[str]) -> dict[str, Any]:
    """The in-memory engine, Parquet to Parquet; seconds per phase and peak RSS."""
    from graphsel.data.log import read_pair

    start = time.perf_counter()
    source_log, target_log = read_pair(source, target)
    read = time.perf_counter()
    selection = selection_config(stages).build().fit(source_log, target_log).selection_
    graph = time.perf_counter()
    selection.write(source_log, out)
    end = time.perf_counter()
    assert selection.report is not None
    return {"read": read - start, "graph": graph - read, "write": end - graph,
            "total": end - start, "selected": selection.num_selected,
            "peak_mb": _peak_rss_mb(), "report": selection.report.to_json()}


def run_spark(source: str, target: str, out: str, master: str,
              conf: dict[str, str], stages: list[str]) -> dict[str, Any]:
    """The Spark engine, Parquet to Parquet; seconds per phase and both processes' peaks.

    With ``spark.eventLog.dir`` in ``conf``, every phase's jobs run in a job group of its
    name (``read``, ``seeds``, ``edges``, ``cap``, ``hop 1``, ..., ``write``) and the seconds
    of each are returned, for :func:`shuffle_by_phase` to match with the event log.
    """
    import warnings

    from graphsel.engines import spark as engine
    from graphsel.engines import spark_select

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    begin = time.perf_counter()
    spark = engine.spark_session(master, conf, app_name="graphsel-bench")
    spark.sparkContext.setLogLevel("ERROR")
    phases: list[tuple[str, float]] = []

    def phase(name: str) -> None:
        spark.sparkContext.setJobGroup(name, name)
        phases.append((name, time.perf_counter()))

    start = time.perf_counter()
    config = selection_config(stages)
    report = spark_select.run_selection(spark, source, target,
                                        [config.stage(name) for name in stages], out,
                                        progress=phase)
    end = time.perf_counter()
    phases.append(("end", end))
    seconds = {name: later - at for (name, at), (_, later) in itertools.pairwise(phases)}
    # read: until the first stage's phase; graph: the stages; write: the rest
    read = phases[1][1]
    graph = next(at for name, at in phases if name == "write")
    selected = report.selected
    details = report.stages[0].details.to_json()
    expansion = {"hop_counts": [(h["users"], h["items"]) for h in details["hops"]],
                 "max_degree": details["max_degree"],
                 "capped": (details["capped"]["users"], details["capped"]["items"])}
    result = {"session": start - begin, "read": read - start, "graph": graph - read,
              "write": end - graph, "total": end - start, "selected": selected,
              "peak_mb": _peak_rss_mb(), "jvm_peak_mb": _jvm_peak_mb(spark),
              **expansion, "phase_seconds": seconds}
    spark.stop()
    return result


def shuffle_by_phase(event_log_dir: Path) -> dict[str, tuple[int, int]]:
    """``{job group: (shuffle bytes written, shuffle records written)}`` from an event log."""
    stage_group: dict[int, str] = {}
    totals: dict[str, list[int]] = {}
    # Spark 4 writes a rolling log: a folder of events_* files (and an empty appstatus file)
    for path in sorted(p for p in event_log_dir.rglob("*") if p.is_file()):
        with open(path) as log:
            for line in log:
                if not line.startswith("{"):
                    continue
                event = json.loads(line)
                kind = event.get("Event")
                if kind == "SparkListenerJobStart":
                    group = (event.get("Properties") or {}).get("spark.jobGroup.id", "?")
                    for stage in event.get("Stage IDs", []):
                        stage_group[stage] = group
                elif kind == "SparkListenerTaskEnd":
                    metrics = (event.get("Task Metrics") or {}).get("Shuffle Write Metrics", {})
                    group = stage_group.get(event.get("Stage ID"), "?")
                    total = totals.setdefault(group, [0, 0])
                    total[0] += int(metrics.get("Shuffle Bytes Written", 0))
                    total[1] += int(metrics.get("Shuffle Records Written", 0))
    return {group: (b, r) for group, (b, r) in totals.items()}


def _phase_nodes(spark: dict[str, Any], name: str) -> str:
    """The users and items a phase reached: the seeds, or a hop's new nodes."""
    if name == "seeds":
        users, items = spark["hop_counts"][0]
    elif name.startswith("hop "):
        users, items = spark["hop_counts"][int(name.split()[1])]
    elif name == "capped":
        users, items = spark["capped"]
        return f"{users:,} / {items:,} hubs"
    else:
        return ""
    return f"{users:,} / {items:,}"


def _worker(argv: list[str]) -> None:
    engine, source, target, out, stages = *argv[:4], argv[4].split(",")
    if engine == "local":
        result = run_local(source, target, out, stages)
    else:
        master, conf = argv[5], json.loads(argv[6])
        result = run_spark(source, target, out, master, conf, stages)
    print("RESULT " + json.dumps(result))


def _run_worker(args: list[str]) -> dict[str, Any]:
    process = subprocess.run([sys.executable, __file__, "--worker", *args],
                             capture_output=True, text=True, check=False)
    lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    if process.returncode != 0 or not lines:
        # a Java stack trace can fill the tail: keep the lines that say what failed
        said = [line for line in process.stderr.splitlines()
                if line.strip() and not line.startswith(("\tat ", "\t... "))]
        sys.stderr.write("\n".join(said)[-4000:] + "\n")
        raise SystemExit(f"the {args[0]} engine failed (exit code {process.returncode})")
    return json.loads(lines[-1][len("RESULT "):])


def _seconds(result: dict[str, Any]) -> list[str]:
    return [f"{result[key]:.2f}" for key in ("read", "graph", "write", "total")]


def prepare(rows: int, folder: Path, chunks: int = 1) -> tuple[str, str]:
    """Writes the synthetic default with ``rows`` source rows; returns the two paths.

    With ``chunks`` > 1 the source is a directory of ``chunks`` files, each the synthetic
    default at ``rows / chunks`` rows with seed ``0, 1, ...`` (one file in memory at a time);
    the target is seed 0's.
    """
    from graphsel.data.datasets import get_dataset
    from graphsel.data.log import write_log

    if chunks == 1:
        split = get_dataset("synthetic")(scale=rows / ROWS_AT_SCALE_1, seed=0)
        source = write_log(split.source, folder / "source.parquet")
        return str(source), str(write_log(split.target, folder / "target.parquet"))
    (folder / "source").mkdir()
    target = ""
    for chunk in range(chunks):
        split = get_dataset("synthetic")(scale=rows / chunks / ROWS_AT_SCALE_1, seed=chunk)
        write_log(split.source, folder / "source" / f"part-{chunk:04d}.parquet")
        if chunk == 0:
            target = str(write_log(split.target, folder / "target.parquet"))
        del split
    return str(folder / "source"), target


def same_rows(local_out: str, spark_out: str) -> bool:
    """Whether two selections hold the same rows in the same order (graphsel's reader; NaN
    scores equal; ``weight`` and ``p_target`` within 1e-6, ``knn_score`` within 1e-5)."""
    import numpy as np

    from graphsel.data.log import read_log

    tolerance = {"weight": 1e-6, "p_target": 1e-6, "knn_score": 1e-5}
    local, spark = read_log(local_out).table, read_log(spark_out).table
    return local.schema.remove_metadata() == spark.schema.remove_metadata() and all(
        np.allclose(local.column(c).to_numpy(zero_copy_only=False),
                    spark.column(c).to_numpy(zero_copy_only=False), rtol=0,
                    atol=tolerance[c], equal_nan=True) if c in tolerance else
        np.array_equal(local.column(c).to_numpy(zero_copy_only=False),
                       spark.column(c).to_numpy(zero_copy_only=False),
                       equal_nan=local.schema.field(c).type in (pa.float32(), pa.float64()))
        for c in local.column_names)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true",
                        help="one 10,000-row log on a local[1] test session (seconds)")
    parser.add_argument("--sizes", type=int, nargs="+", help="source rows per run "
                        "(default 1,000,000 and 5,000,000)")
    parser.add_argument("--master", default=None, help="Spark master (default local[2])")
    parser.add_argument("--driver-memory", default="1g", help="spark.driver.memory (default 1g)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="more Spark settings, repeatable")
    parser.add_argument("--stages", default="graph",
                        help="comma-separated stages both engines run (default graph)")
    parser.add_argument("--spark-only", action="store_true",
                        help="run the Spark engine alone (a log too large for the local one)")
    parser.add_argument("--chunks", type=int, default=1,
                        help="write the source as this many synthetic files (default 1)")
    args = parser.parse_args(argv)
    stages = args.stages

    from graphsel._table import format_table
    from graphsel.engines.spark import SMALL_CONF

    sizes = args.sizes or (SMALL_SIZES if args.small else FULL_SIZES)
    master = args.master or ("local[1]" if args.small else "local[2]")
    conf = dict(SMALL_CONF) if args.small else {"spark.driver.memory": args.driver_memory}
    conf.update(item.split("=", 1) for item in args.conf)
    load_before = os.getloadavg()
    rows: list[list[Any]] = []
    phase_rows: list[list[Any]] = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
            folder = Path(tmp)
            source, target = prepare(size, folder, args.chunks)
            local = (None if args.spark_only else
                     _run_worker(["local", source, target, str(folder / "local.parquet"),
                                  stages]))
            events = folder / "events"
            events.mkdir()
            spark_conf = {**conf, "spark.eventLog.enabled": "true",
                          "spark.eventLog.dir": events.as_uri(), "spark.eventLog.compress": "false"}
            spark = _run_worker(["spark", source, target, str(folder / "spark.parquet"),
                                 stages, master, json.dumps(spark_conf)])
            shuffle = shuffle_by_phase(events)
            equal = "-" if local is None else "yes" if same_rows(
                str(folder / "local.parquet"), str(folder / "spark.parquet")) else "NO"
        phase_rows += [[f"{size:,}", name, f"{spark['phase_seconds'][name]:.2f}",
                        f"{shuffle.get(name, (0, 0))[0] / 2**20:.1f}",
                        shuffle.get(name, (0, 0))[1], _phase_nodes(spark, name)]
                       for name in spark["phase_seconds"]]
        spark_mb = spark["peak_mb"] + (spark["jvm_peak_mb"] or 0.0)
        if local is not None:
            rows.append([f"{size:,}", "local", "-", *_seconds(local), "1.00",
                         round(local["peak_mb"]), "-", "1.00", local["selected"], "-"])
        rows.append([f"{size:,}", f"spark {master}", f"{spark['session']:.2f}",
                     *_seconds(spark),
                     "-" if local is None else f"{spark['total'] / local['total']:.2f}",
                     round(spark["peak_mb"]),
                     "-" if spark["jvm_peak_mb"] is None else round(spark["jvm_peak_mb"]),
                     "-" if local is None else f"{spark_mb / local['peak_mb']:.2f}",
                     spark["selected"], equal])
    load_after = os.getloadavg()
    settings = ", ".join(f"{k}={v}" for k, v in conf.items())
    print(format_table(
        ["source rows", "engine", "session s", "read s", "graph s", "write s", "total s",
         "x local", "peak MB", "JVM peak MB", "x local mem", "selected", "equal"],
        rows,
        title=f"{'graph stage' if stages == 'graph' else 'stages ' + stages}, Parquet to "
              f"Parquet, synthetic default ({os.cpu_count()} cores; Spark: {settings})"))
    print()
    print(format_table(["source rows", "Spark phase", "seconds", "shuffle MB", "shuffle records",
                        "new users / items"], phase_rows,
                       title="Spark phases (job groups; shuffle written, from the event log)"))
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f} "
          f"{load_after[2]:.2f}")
    print("total s: read + graph + write, without the Spark session's start; x local: the "
          "ratio to the local engine in this run; x local mem: (Python + JVM) / local peak RSS")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2:])
    else:
        main()
