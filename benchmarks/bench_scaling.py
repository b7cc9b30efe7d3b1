"""Does ``graphsel select`` scale linearly? (``make bench-scaling``)

Runs ``graphsel select`` (default stages) as a child process on the synthetic default at
several scales (``--scale 1`` is 200,000 source rows; the default points are 0.2M, 2M, 6M and
20M rows) and reports, per point, the wall seconds and the peak RSS of that child alone
(``os.wait4``), each per source row and as a ratio to the reference point's figure (2M rows,
measured in the same run). Linear scaling means ratios near 1; the goal of issue #18 is
seconds per row at 6M and 20M within 1.3x of the 2M figure, 6M rows in <= 20 s and <= 1.5 GB,
20M rows in <= 12 GB. Preparing the data is not timed. The last column holds the seconds
of each stage from the report, which tell which stage grows faster than the rows.

Before each point the expected peak (:func:`expected_peak`, plus half) is compared with
``MemAvailable``: a point that would not fit is skipped and the table says so, so the
largest point can be left in the list on a smaller machine. Points run in increasing size,
the largest last.

``--plot FILE`` also draws seconds and peak RSS per row against the rows (PNG).

Usage::

    python benchmarks/bench_scaling.py                       # 0.2M, 2M, 6M, 20M rows
    python benchmarks/bench_scaling.py --scales 1 10 30      # without the 20M point
    python benchmarks/bench_scaling.py --small               # seconds (run by the tests)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from graphsel._table import format_table

ROWS_PER_SCALE = 200_000
"""Source rows of the synthetic default at ``--scale 1``."""


@dataclass(frozen=True)
class Point:
    """One measured ``select`` run."""

    scale: float
    rows: int
    seconds: float
    peak_bytes: int
    selected: int
    stage_seconds: tuple[tuple[str, float], ...] = ()

    @property
    def seconds_per_million(self) -> float:
        return self.seconds / self.rows * 1e6

    @property
    def bytes_per_row(self) -> float:
        return self.peak_bytes / self.rows


def _graphsel(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "graphsel", *args], check=True,
                   stdout=subprocess.DEVNULL)


# Runs argv[2:], writes the child's own peak RSS (KiB) to argv[1], exits with its code. A
# child started from this small process: Linux keeps a process's RSS high-water mark across
# fork and exec, so a child started by a large parent (a test runner) reports the parent's.
_LAUNCHER = ("import os, subprocess, sys; child = subprocess.Popen(sys.argv[2:]); "
             "_, status, usage = os.wait4(child.pid, 0); "
             "open(sys.argv[1], 'w').write(str(usage.ru_maxrss)); "
             "sys.exit(os.waitstatus_to_exitcode(status))")


def run_child(args: list[str]) -> tuple[float, int]:
    """Runs ``args``; returns its wall seconds and its own peak RSS in bytes.

    The peak is that of the child alone (``wait4`` in a small launcher process), not of
    every child so far as ``RUSAGE_CHILDREN`` gives, nor this process's.
    """
    with tempfile.TemporaryDirectory(prefix="bench-scaling-rss-") as tmp:
        peak_file = Path(tmp) / "peak"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", _LAUNCHER, str(peak_file), *args], check=True,
                       stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        return seconds, int(peak_file.read_text()) * 1024  # KiB on Linux


def available_bytes() -> int:
    """``MemAvailable`` of ``/proc/meminfo`` (the machine's; 0 when unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def expected_peak(points: list[Point], rows: float) -> float:
    """Peak RSS bytes expected at ``rows``: the largest point's, plus the steepest growth
    per row between two consecutive points for the rows beyond it (0 with no point).

    >>> expected_peak([Point(1, 100, 1.0, 1000, 1), Point(2, 200, 2.0, 1500, 1)], 400)
    2500.0
    """
    if not points:
        return 0.0
    slopes = [(larger.peak_bytes - smaller.peak_bytes) / (larger.rows - smaller.rows)
              for smaller, larger in zip(points, points[1:]) if larger.rows > smaller.rows]
    last = points[-1]
    slope = max(slopes, default=last.bytes_per_row)
    return last.peak_bytes + slope * max(rows - last.rows, 0)


def measure(scale: float, workdir: Path) -> Point:
    """Prepares the synthetic data at ``scale`` and times ``graphsel select`` on it."""
    data = workdir / f"scale-{scale:g}"
    _graphsel("datasets", "prepare", "synthetic", "--scale", f"{scale:g}", "--out", str(data))
    report = workdir / f"report-{scale:g}.json"
    seconds, peak = run_child([
        sys.executable, "-m", "graphsel", "select", "--source", str(data / "source.parquet"),
        "--target", str(data / "target.parquet"), "--out", str(workdir / "selected.parquet"),
        "--report", str(report), "--json"])
    content = json.loads(report.read_text())
    for path in data.iterdir():  # the largest point needs the disk more than the cache
        path.unlink()
    data.rmdir()
    return Point(scale, content["rows"]["source"], seconds, peak, content["selected"],
                 tuple((stage["name"], stage["seconds"]) for stage in content["stages"]))


def bench(scales: list[float], reference: float) -> tuple[list[Point], str]:
    """Measures every scale in increasing order; returns the points and the table."""
    points: list[Point] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        for scale in sorted(scales):
            expected_rows = scale * ROWS_PER_SCALE
            need, have = 1.5 * expected_peak(points, expected_rows), available_bytes()
            if need and have and need > have:
                skipped.append(f"scale {scale:g} (~{expected_rows / 1e6:.1f}M rows) skipped: "
                               f"needs ~{need / 2**30:.1f} GiB, {have / 2**30:.1f} GiB "
                               f"available")
                continue
            print(f"  scale {scale:g}: load {os.getloadavg()[0]:.2f}", file=sys.stderr,
                  flush=True)
            points.append(measure(scale, Path(tmp)))
            print(f"  scale {scale:g}: {points[-1].seconds:.1f} s, "
                  f"{points[-1].peak_bytes / 2**20:,.0f} MiB", file=sys.stderr, flush=True)
    base = next((point for point in points if point.scale == reference), points[0])
    table_rows = [[f"{point.rows:,}", point.selected, f"{point.seconds:.1f}",
             f"{point.seconds_per_million:.2f}",
             f"{point.seconds_per_million / base.seconds_per_million:.2f}x",
             f"{point.peak_bytes / 2**20:,.0f}", f"{point.bytes_per_row:.0f}",
             f"{point.bytes_per_row / base.bytes_per_row:.2f}x",
             " ".join(f"{name} {seconds:.1f}" for name, seconds in point.stage_seconds)]
            for point in points]
    title = (f"graphsel select on the synthetic default, per source row (reference: "
             f"{base.rows:,} rows); load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    table = format_table(["source rows", "selected", "seconds", "s per 1M rows", "vs ref",
                          "peak RSS MiB", "bytes per row", "vs ref", "stage seconds"],
                         table_rows, title=title)
    return points, "\n".join([table, *skipped])


def plot(points: list[Point], path: Path) -> None:
    """Seconds and peak RSS per row against rows, log-scaled rows (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    rows = [point.rows for point in points]
    left.plot(rows, [point.seconds_per_million for point in points], "o-")
    left.set(xscale="log", xlabel="source rows", ylabel="seconds per 1M rows", ylim=(0, None),
             title="time per row")
    right.plot(rows, [point.bytes_per_row for point in points], "o-")
    right.set(xscale="log", xlabel="source rows", ylabel="peak RSS bytes per row",
              ylim=(0, None), title="memory per row")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 10, 30, 100],
                        help="synthetic scales (1 = 200,000 source rows) [default: 1 10 30 100]")
    parser.add_argument("--reference", type=float, default=10,
                        help="scale whose per-row figures the others are compared with "
                             "[default: 10, 2M rows; the smallest point when not measured]")
    parser.add_argument("--plot", type=Path, help="also draw the per-row figures (PNG)")
    parser.add_argument("--small", action="store_true",
                        help="scales 0.05 and 0.1 only, runs in seconds")
    args = parser.parse_args(argv)
    scales, reference = ([0.05, 0.1], 0.05) if args.small else (args.scales, args.reference)
    points, table = bench(scales, reference)
    print(table, flush=True)
    if args.plot is not None:
        plot(points, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
