"""Benchmark: building the bipartite graph and expanding k hops, graphsel vs PyG.

Generates a seeded power-law bipartite graph (default 1M users, 200k items, 20M pairs),
seeds a random 1% of users and 1% of items, and prints one table measured in this run:

- build, timed after the pairs are generated: graphsel ``BipartiteGraph.from_arrays``
  (deduplication, CSR and CSC) plus the boolean matrices expansion uses (``row_edge``, which
  expansion does not use, is computed on first use and not counted); PyG: the homogeneous
  undirected ``edge_index`` (users ``0..U-1``, items ``U..U+I-1``, both directions), all that
  ``k_hop_subgraph`` needs: no deduplication and no sorting, so the two builds do different
  work and their ratio says what PyG's format saves in building, not who builds faster;
- 1-hop and 2-hop expansion time (best of ``--repeat``; edge masks included on both sides);
- the same times as CPU seconds (all threads of the process): on a shared machine wall
  time also counts waiting for a core;
- extra peak memory of a 2-hop expansion: the larger of tracemalloc's peak and the peak
  RSS above the RSS before the call (see :func:`extra_peak_mb`; Linux only);
- the fraction of nodes reached at 2 hops, uncapped and with ``max_degree`` caps.

Run ``python benchmarks/bench_graph.py`` (``make bench-graph``), or ``--small`` for a tiny
graph in seconds (what the test suite runs, so this script cannot rot).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from graphsel._table import format_table
from graphsel.graph.bipartite import BipartiteGraph
from graphsel.graph.expansion import expand

SMALL = {"users": 2_000, "items": 500, "pairs": 20_000, "caps": (50, 10)}
FULL = {"users": 1_000_000, "items": 200_000, "pairs": 20_000_000, "caps": (1000, 100)}


def power_law_pairs(num_users: int, num_items: int, num_pairs: int,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(user, item)`` int32 codes with power-law degrees, by inverse-CDF sampling.

    ``floor(n * r ** gamma)`` for uniform ``r`` has density ``~ x ** (1 / gamma - 1)``: a few
    codes get most pairs (gamma 2 for users, 3 for items, whose hubs are heavier). Codes are
    then permuted so hubs are not all at the low end.
    """
    rng = np.random.default_rng(seed)

    def draw(n: int, gamma: float) -> np.ndarray:
        ranks = (n * rng.random(num_pairs) ** gamma).astype(np.int32)
        return rng.permutation(n).astype(np.int32)[ranks]

    return draw(num_users, 2.0), draw(num_items, 3.0)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def extra_peak_mb(fn: Callable[[], Any]) -> float:
    """Extra peak memory of ``fn()`` in MB: the larger of two views of it.

    - tracemalloc's peak: every numpy (and scipy) array allocated during the call, exactly,
      even when the allocator reuses memory the process already holds;
    - the peak RSS above the RSS before the call: the kernel's peak mark is reset
      (``echo 5 > /proc/self/clear_refs``) and ``VmHWM`` read afterwards, which also counts
      torch's allocator, invisible to tracemalloc.
    """
    gc.collect()
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    before_kb = _status_kb("VmRSS")
    tracemalloc.start()
    try:
        result = fn()
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_peak = (_status_kb("VmHWM") - before_kb) * 1e3
    del result
    return max(traced_peak, rss_peak) / 1e6


def best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Wall and CPU seconds (all threads) of the fastest of ``repeat`` calls, and its result."""
    best, result = (float("inf"), float("inf")), None
    for _ in range(repeat):
        result = None
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best[0], best[1], result


def graph_nbytes(graph: BipartiteGraph) -> int:
    """Bytes held by the graph's arrays and the boolean matrices expansion builds."""
    total = graph.row_edge.nbytes + graph.row_relation.nbytes
    for edges in graph.relation_edges:
        total += sum(getattr(edges, name).nbytes for name in (
            "indptr", "indices", "rev_indptr", "rev_indices", "rev_edge", "edge_ts", "edge_row"))
    adjacency = graph.adjacency()
    for matrix in (adjacency.user_matrix(), adjacency.item_matrix()):
        total += matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a tiny graph, in seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement")
    parser.add_argument("--no-pyg", action="store_true", help="skip PyG (graphsel only)")
    args = parser.parse_args(argv)
    size = SMALL if args.small else FULL
    num_users, num_items = size["users"], size["items"]
    num_nodes = num_users + num_items

    start = time.perf_counter()
    user, item = power_law_pairs(num_users, num_items, size["pairs"], args.seed)
    print(f"generated {size['pairs']:,} pairs over {num_users:,} users and {num_items:,} items "
          f"in {time.perf_counter() - start:.1f} s", flush=True)
    rng = np.random.default_rng(args.seed + 1)
    seed_users = np.sort(rng.choice(num_users, max(num_users // 100, 1), replace=False))
    seed_items = np.sort(rng.choice(num_items, max(num_items // 100, 1), replace=False))

    def build_graph() -> BipartiteGraph:
        graph = BipartiteGraph.from_arrays(user, item, num_users=num_users, num_items=num_items)
        graph.adjacency().user_matrix()
        graph.adjacency().item_matrix()
        return graph

    build_s, build_cpu, graph = best_time(build_graph, 1)
    print(f"{graph!r}; graph arrays {graph_nbytes(graph) / 1e6:.0f} MB; RSS now "
          f"{_status_kb('VmRSS') / 1e3:.0f} MB", flush=True)
    ours = {"build": build_s, "build cpu": build_cpu}
    reached = {}
    for hops in (1, 2):
        ours[hops], ours[hops, "cpu"], result = best_time(
            lambda h=hops: expand(graph, seed_users, seed_items, num_hops=h), args.repeat)
        reached[hops] = result.num_users + result.num_items
    ours["memory"] = extra_peak_mb(lambda: expand(graph, seed_users, seed_items, num_hops=2))
    capped = {cap: expand(graph, seed_users, seed_items, num_hops=2, max_degree=cap)
              for cap in size["caps"]}

    theirs: dict[Any, float] = {}
    theirs_reached: dict[int, int] = {}
    if not args.no_pyg:
        import torch
        from torch_geometric.utils import k_hop_subgraph

        def build_edge_index() -> Any:
            users = torch.from_numpy(user.astype(np.int64))
            items = torch.from_numpy(item.astype(np.int64)) + num_users
            return torch.stack([torch.cat([users, items]), torch.cat([items, users])])

        theirs["build"], theirs["build cpu"], edge_index = best_time(build_edge_index, 1)
        node_idx = torch.from_numpy(np.concatenate([seed_users, seed_items + num_users]))
        pyg_repeat = 1 if not args.small else args.repeat
        for hops in (1, 2):
            theirs[hops], theirs[hops, "cpu"], (subset, *_) = best_time(
                lambda h=hops: k_hop_subgraph(node_idx, h, edge_index, num_nodes=num_nodes),
                pyg_repeat)
            theirs_reached[hops] = len(subset)
        theirs["memory"] = extra_peak_mb(
            lambda: k_hop_subgraph(node_idx, 2, edge_index, num_nodes=num_nodes))

    def row(label: str, key: Any, unit: str) -> list[Any]:
        mine = ours[key]
        if key not in theirs:
            return [label, f"{mine:.3f} {unit}", "-", "-"]
        ratio = theirs[key] / mine if mine > 0 else float("inf")
        return [label, f"{mine:.3f} {unit}", f"{theirs[key]:.3f} {unit}", f"{ratio:.1f}x"]

    print()
    print(format_table(
        ["measure", "graphsel", "PyG k_hop_subgraph", "PyG / graphsel"],
        [row("build (PyG: edge_index only)", "build", "s"), row("1-hop expansion", 1, "s"),
         row("2-hop expansion", 2, "s"), row("build, CPU time", "build cpu", "s"),
         row("1-hop, CPU time", (1, "cpu"), "s"), row("2-hop, CPU time", (2, "cpu"), "s"),
         row("2-hop extra peak memory", "memory", "MB")],
        title=f"bipartite graph: {num_users:,} users, {num_items:,} items, "
              f"{graph.num_edges:,} edges; seeds: {len(seed_users):,} users + "
              f"{len(seed_items):,} items"))
    print()
    fractions = [["uncapped", reached[2], f"{reached[2] / num_nodes:.1%}", "-", "-"]]
    for cap, result in capped.items():
        nodes = result.num_users + result.num_items
        fractions.append([f"max_degree={cap}", nodes, f"{nodes / num_nodes:.1%}",
                          len(result.capped_users), len(result.capped_items)])
    print(format_table(["2 hops", "nodes reached", "fraction", "capped users", "capped items"],
                       fractions, title="reach at 2 hops"))
    print(f"\nload average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if theirs_reached:
        agree = all(theirs_reached[h] == reached[h] for h in (1, 2))
        print(f"\nreached nodes agree with PyG: {'yes' if agree else 'NO'} "
              f"(1 hop {reached[1]:,} vs {theirs_reached[1]:,}; "
              f"2 hops {reached[2]:,} vs {theirs_reached[2]:,})")
        if not agree:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
