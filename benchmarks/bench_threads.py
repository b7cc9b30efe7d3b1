"""Commands on a busy machine, with and without graphsel's thread policy (``make bench-threads``).

Two workloads run as separate ``graphsel`` processes:

* ``demo``: ``graphsel demo`` (the synthetic default, selection and every strategy);
* ``run``: ``graphsel run`` on MovieLens-1M, target genre Documentary (``$GRAPHSEL_DATA``),
  with the shipped ``configs/ml1m-documentary.yaml`` cut to 4 strategies (``target_only``,
  ``merge_all``, ``selected``, ``selected_weighted``), 1 seed and 100,000 source rows.

Each runs under each policy (``--policies``; ``off``: ``GRAPHSEL_THREADS=off``, the
libraries' defaults, what graphsel did before; ``auto``: the default policy of
:mod:`graphsel._runtime`; a number: ``GRAPHSEL_THREADS=N``), first on the machine as it is
("quiet"), then next to burner processes that this script starts and stops, one spinning
Python loop per usable CPU ("busy"). The thread variables of the caller's environment
(``OMP_WAIT_POLICY``, ``*_NUM_THREADS``, ...) are removed for every run, so the policies
differ only by ``GRAPHSEL_THREADS``.

The table gives wall seconds, CPU seconds (user + system, all threads of the ``graphsel``
process: spinning threads show there, whatever else the machine runs) and the load average
(1 min) at the end of each run, the busy/quiet wall-time ratio (target: <= 2 with ``auto``),
each policy's quiet time relative to ``off`` (the price of the policy on an unloaded
machine), and whether the results (the JSON output without its timing fields) equal those of
the first run of the workload (``-``: no finished run to compare). On a shared machine
"quiet" only means without our burners: other users' load stays, the load column shows it;
repeat (``--repeat N`` keeps the fastest of N) when it moved. A run longer than ``--cap``
seconds is stopped and shown as ``>cap`` (its ratio as a lower bound).

``--quick`` runs tiny versions (``demo --scale 0.02 --no-transfer``; ``run`` on a small
synthetic config) in seconds: the tests use it so this script cannot rot; its numbers mean
nothing.

Usage: ``python benchmarks/bench_threads.py [--quick] [--workloads demo,run]
[--policies off,auto] [--repeat 1] [--cap 600]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from graphsel._runtime import ENV, MARK, THREAD_COUNT_VARIABLES, usable_cpus
from graphsel._table import format_table

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 2.0
ML1M_STRATEGIES = ["target_only", "merge_all", "selected", "selected_weighted"]
ML1M_SOURCE_ROWS = 100_000
# the caller's own settings would make every policy the same
CLEARED = (ENV, MARK, "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", *THREAD_COUNT_VARIABLES)
TIMING_KEYS = ("seconds", "tuning_seconds", "out_dir")
QUICK_RUN = {"dataset": {"name": "synthetic", "options": {"seed": 0, "scale": 0.02}},
             "selection": {"stages": ["graph"]}, "train": {"epochs": 1, "batch_size": 1024},
             "strategies": ["target_only"], "seeds": 1}


@dataclass(frozen=True)
class Timing:
    """One run: wall seconds (None: stopped at the cap), CPU seconds of the process (user +
    system, every thread), load average at its end, results (None when stopped)."""

    seconds: float | None
    cpu: float
    load: float
    results: Any


def ml1m_config(shipped: Path) -> dict[str, Any]:
    """The shipped ML-1M Documentary config cut to 4 strategies, 1 seed, 100k source rows."""
    config = yaml.safe_load(shipped.read_text())
    config.update(strategies=ML1M_STRATEGIES, seeds=1, max_source_rows=ML1M_SOURCE_ROWS)
    return config


def workload_commands(names: Sequence[str], folder: Path, quick: bool) -> dict[str, list[str]]:
    """``graphsel`` arguments of each workload (without the per-run output options)."""
    config = folder / "run.yaml"
    config.write_text(yaml.safe_dump(
        QUICK_RUN if quick else ml1m_config(ROOT / "configs" / "ml1m-documentary.yaml")))
    commands = {"demo": ["demo", "--json"] + (["--scale", "0.02", "--no-transfer"] if quick else []),
                "run": ["run", "--config", str(config)]}
    return {name: commands[name] for name in names}


def policy_env(policy: str) -> dict[str, str]:
    """The environment of a run under ``policy`` (``auto``: GRAPHSEL_THREADS unset)."""
    env = {name: value for name, value in os.environ.items() if name not in CLEARED}
    if policy != "auto":
        env[ENV] = policy
    return env


def without_timing(results: Any) -> Any:
    """``results`` without the fields that measure time (they differ from run to run)."""
    if isinstance(results, dict):
        return {key: without_timing(value) for key, value in results.items()
                if key not in TIMING_KEYS}
    if isinstance(results, list):
        return [without_timing(value) for value in results]
    return results


@contextmanager
def burners(count: int) -> Iterator[None]:
    """``count`` processes spinning a Python loop, each a whole CPU's worth of load."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.5)  # let them start before the measured run does
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def run_once(args: list[str], env: dict[str, str], folder: Path, cap: float) -> Timing:
    """Runs ``graphsel ARGS`` in a fresh folder and times it; stops it after ``cap`` s."""
    folder.mkdir()
    if args[0] == "run":
        args = args + ["--run-dir", str(folder / "runs"), "--out", str(folder / "out.json")]
    stdout = folder / "stdout"
    cpu_before = _children_cpu()
    start = time.perf_counter()
    with stdout.open("w") as out:
        # its own process group: stopping it at the cap stops its children too
        proc = subprocess.Popen([sys.executable, "-m", "graphsel", *args], stdout=out,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=folder,
                                start_new_session=True)
        try:
            _, stderr = proc.communicate(timeout=cap)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return Timing(None, _children_cpu() - cpu_before, os.getloadavg()[0], None)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"graphsel {' '.join(args)} failed ({proc.returncode}): {stderr}")
    text = (folder / "out.json" if args[0] == "run" else stdout).read_text()
    return Timing(seconds, _children_cpu() - cpu_before, os.getloadavg()[0],
                  without_timing(json.loads(text)))


def _children_cpu() -> float:
    """CPU seconds of the finished (waited for) children: the burners run on meanwhile."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fastest(timings: list[Timing]) -> Timing:
    """The fastest of repeated runs (other processes only ever slow a run down)."""
    finished = [t for t in timings if t.seconds is not None]
    return min(finished, key=lambda t: t.seconds or 0.0) if finished else timings[0]


def _seconds(timing: Timing, cap: float) -> str:
    return f">{cap:.0f}" if timing.seconds is None else f"{timing.seconds:.1f}"


def _ratio(busy: Timing, quiet: Timing, cap: float) -> tuple[str, float | None]:
    if quiet.seconds is None:
        return "-", None
    if busy.seconds is None:
        return f">{cap / quiet.seconds:.1f}x", None
    ratio = busy.seconds / quiet.seconds
    return f"{ratio:.2f}x", ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny workloads (tests)")
    parser.add_argument("--workloads", default="demo,run", help="comma-separated: demo, run")
    parser.add_argument("--policies", default="off,auto",
                        help="comma-separated GRAPHSEL_THREADS values: off, auto, N")
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell, fastest kept")
    parser.add_argument("--cap", type=float, default=600.0, help="seconds before a run stops")
    args = parser.parse_args(argv)
    names = [name for name in args.workloads.split(",") if name]
    if "run" in names and not args.quick and not os.environ.get("GRAPHSEL_DATA"):
        print("run: skipped, set GRAPHSEL_DATA to the shared data folder", flush=True)
        names.remove("run")
    policies = args.policies.split(",")
    cpus = usable_cpus()
    print(f"bench_threads: {cpus} usable CPUs, {cpus} burner processes for the busy runs; "
          f"load at start {os.getloadavg()[0]:.2f} (other users' load is in every run, "
          f"\"quiet\" only means without our burners)", flush=True)

    rows: list[list[str]] = []
    met: bool | None = None
    with tempfile.TemporaryDirectory(prefix="bench_threads_") as tmp:
        commands = workload_commands(names, Path(tmp), args.quick)
        counter = iter(range(10**6))

        def measure(command: list[str], policy: str) -> Timing:
            return fastest([run_once(command, policy_env(policy), Path(tmp) / f"r{next(counter)}",
                                     args.cap) for _ in range(args.repeat)])

        for name, command in commands.items():
            reference = None
            quiet_off = None
            for policy in policies:
                quiet = measure(command, policy)
                with burners(cpus):
                    busy = measure(command, policy)
                reference = reference if reference is not None else quiet.results
                quiet_off = quiet if policy == "off" else quiet_off
                same = [t.results == reference for t in (quiet, busy) if t.results is not None]
                ratio_text, ratio = _ratio(busy, quiet, args.cap)
                if policy == "auto":
                    met = met is not False and ratio is not None and ratio <= TARGET_RATIO
                vs_off = ("-" if quiet_off is None or quiet_off.seconds is None
                          or quiet.seconds is None or policy == "off"
                          else f"{quiet.seconds / quiet_off.seconds:.2f}x")
                rows.append([name, policy, _seconds(quiet, args.cap), f"{quiet.cpu:.1f}",
                             f"{quiet.load:.2f}", _seconds(busy, args.cap), f"{busy.cpu:.1f}",
                             f"{busy.load:.2f}", ratio_text, vs_off,
                             "-" if not same else "yes" if all(same) else "NO"])
                print(f"  {name} {policy}: quiet {rows[-1][2]} s, busy {rows[-1][5]} s",
                      flush=True)
    print(format_table(["workload", "policy", "quiet s", "cpu s", "load", "busy s", "cpu s",
                        "load", "busy/quiet", "quiet vs off", "same results"], rows))
    print(f"target (busy/quiet <= {TARGET_RATIO:.0f}x with the policy 'auto'): "
          + {True: "met", False: "NOT met", None: "not measured"}[met]
          + (" (quick mode: the numbers mean nothing)" if args.quick else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
