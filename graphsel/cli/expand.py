"""``graphsel expand``: k-hop expansion from the users and items a source and a target share."""

from __future__ import annotations

import click
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from graphsel.cli._common import emit, format_table, json_option
from graphsel.data.io import atomic_path, check_output_file
from graphsel.data.log import read_pair
from graphsel.graph.bipartite import ITEM, USER, BipartiteGraph
from graphsel.graph.expansion import SELECT_MODES, expand, graph_select, shared_seeds

__all__ = ["command"]


@click.command("expand")
@click.option("--source", required=True, type=click.Path(path_type=str),
              help="Source log (Parquet file or directory, or CSV).")
@click.option("--target", required=True, type=click.Path(path_type=str),
              help="Target log; the users and items it shares with the source are the seeds.")
@click.option("--hops", "num_hops", type=int, default=2, show_default=True,
              help="Hops to expand (one hop: user -> item or item -> user).")
@click.option("--max-degree", type=int, default=None,
              help="Hub cap: nodes with more edges are reached but not expanded through.")
@click.option("--fanout", type=int, default=None,
              help="Expand hubs through this many random edges instead of skipping them.")
@click.option("--as-of", type=int, default=None,
              help="Ignore edges with ts >= this (Unix seconds).")
@click.option("--relations", default=None,
              help="Comma-separated relations to walk, e.g. click,purchase (default: all).")
@click.option("--edges", default="all", show_default=True,
              help="Which source rows make edges: all (every logged row links its user "
                   "and item) or positive (label 1 only).")
@click.option("--mode", default="both", show_default=True,
              help=f"How the per-hop row counts select rows: one of {', '.join(SELECT_MODES)}.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fanout draw.")
@click.option("--out", required=True, type=click.Path(path_type=str),
              help="Parquet file of reached nodes: node_type, node_id, hop, degree.")
@json_option
def command(source: str, target: str, num_hops: int, max_degree: int | None,
            fanout: int | None, as_of: int | None, relations: str | None, edges: str,
            mode: str, seed: int, out: str, as_json: bool) -> None:
    """Expand the source graph from the users and items SOURCE and TARGET share.

    Builds the user-item graph of the source log, expands --hops hops from the shared
    users and items, writes every reached node with its hop and degree to --out, and
    prints how many users, items and source rows each hop adds and how many hubs were
    capped. Exit code 2 with a one-line reason on bad input.
    """
    out_path = check_output_file(out)
    relation_names = None if relations is None else [
        name.strip() for name in relations.split(",") if name.strip()]
    source_log, target_log = read_pair(source, target)
    graph = BipartiteGraph.from_log(source_log, edges=edges)
    seed_users, seed_items = shared_seeds(source_log, target_log)
    result = expand(graph, seed_users, seed_items, num_hops=num_hops,
                    relations=relation_names, max_degree=max_degree, fanout=fanout,
                    as_of=as_of, seed=seed)
    _, row_hop = graph_select(source_log, result, mode=mode)

    columns: dict[str, list[np.ndarray]] = {"node_type": [], "node_id": [], "hop": [],
                                            "degree": []}
    for node_type, hops in ((USER, result.user_hop), (ITEM, result.item_hop)):
        codes = np.flatnonzero(hops >= 0)
        codes = codes[np.argsort(hops[codes], kind="stable")]
        degree = graph.degree(node_type, result.relations, as_of)
        columns["node_type"].append(np.full(len(codes), node_type, dtype=object))
        columns["node_id"].append(graph.node_ids(node_type, codes).astype(str).astype(object))
        columns["hop"].append(hops[codes].astype(np.int32))
        columns["degree"].append(degree[codes].astype(np.int64))
    table = pa.table({name: pa.array(np.concatenate(parts)) for name, parts in columns.items()})
    with atomic_path(out_path) as tmp:
        pq.write_table(table, tmp, compression="zstd")

    rows_per_hop = np.bincount(row_hop[row_hop >= 0], minlength=num_hops + 1)
    per_hop = [
        {"hop": hop, "users": users, "items": items, "rows": int(rows_per_hop[hop]),
         "rows_cumulative": int(rows_per_hop[: hop + 1].sum())}
        for hop, (users, items) in enumerate(result.hop_counts)
    ]
    payload = {
        "out": str(out_path),
        "relations": [name for _, name, _ in result.relations],
        "seeds": {"users": len(seed_users), "items": len(seed_items)},
        "hops": per_hop,
        "reached": {"users": result.num_users, "items": result.num_items},
        "source_rows": len(source_log),
        "mode": mode,
        "capped": {"users": len(result.capped_users), "items": len(result.capped_items)},
        "max_degree": max_degree,
        "fanout": fanout,
    }
    text = format_table(
        ["hop", "users", "items", f"rows ({mode})", "rows so far"],
        [[p["hop"], p["users"], p["items"], p["rows"], p["rows_cumulative"]] for p in per_hop],
        title=f"expansion over {', '.join(payload['relations'])} "
              f"({len(source_log)} source rows)")
    cap = ("no hub cap" if max_degree is None and fanout is None else
           f"hubs capped: {len(result.capped_users)} users, {len(result.capped_items)} items")
    text += f"\n\n{cap}\nwrote {table.num_rows} nodes to {out_path}"
    emit(as_json, payload, text)
