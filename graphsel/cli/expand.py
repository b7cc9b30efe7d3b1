"""``graphsel expand``: k-hop expansion from the users and items a source and a target share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
import pyarrow as pa

from graphsel.cli._common import (
    StepBar,
    emit,
    examples,
    format_table,
    json_option,
    show_progress,
    terminal_options,
)
from graphsel.cli.select import graph_flags, graph_options
from graphsel.data.io import check_paths
from graphsel.data.log import read_pair, write_log
from graphsel.graph.build import ITEM, USER
from graphsel.graph.expansion import last_hop
from graphsel.select.config import SelectionConfig
from graphsel.select.expansion import GraphExpansion

__all__ = ["command"]


@click.command("expand", epilog=examples(
    "graphsel expand --source demo/source.parquet --target demo/target.parquet "
    "--out nodes.parquet",
    "graphsel expand --source demo/source.parquet --target demo/target.parquet --hops 3 "
    "--max-degree none --out nodes.parquet",
    "graphsel expand --source demo/source.parquet --target demo/target.parquet "
    "--relations purchase --json --out nodes.parquet"))
@click.option("--source", required=True, type=click.Path(path_type=str),
              help="Source log (Parquet file or directory, or CSV).")
@click.option("--target", required=True, type=click.Path(path_type=str),
              help="Target log; the users and items it shares with the source are the seeds.")
@graph_options
@click.option("--out", required=True, type=click.Path(path_type=str),
              help="Parquet file of reached nodes: node_type, node_id, hop, degree.")
@terminal_options
@json_option
def command(source: str, target: str, num_hops: int | None, max_degree: str | None,
            fanout: int | None, max_user_rows: str | None, mode: str | None,
            edges: str | None, relations: str | None, as_of: int | None,
            config_path: str | None, seed: int | None, out: str, progress: bool | None,
            quiet: bool, as_json: bool) -> None:
    """Expand the source graph from the users and items the logs share.

    Runs the graph stage of ``graphsel select`` (its defaults, then the ``graph`` part of
    --config, then the flags) on the whole source log from the users and items --source
    and --target share, writes every reached node with its hop and degree to --out, and
    prints how many users, items and source rows each hop adds (up to the last hop that
    reaches something) and how many hubs were capped. Exit code 2 with a one-line reason on
    bad input.
    """
    check_paths({"--source": source, "--target": target, "--config": config_path},
                logs={"--out": out})
    out_path = Path(out)
    config = (SelectionConfig() if config_path is None
              else SelectionConfig.from_yaml(config_path).require_local())
    config = config.subset(["graph"]).merged(
        params={"graph": {**graph_flags(num_hops, max_degree, fanout, max_user_rows, mode,
                                        edges, relations, as_of),
                          "keep_graph": True}},  # the nodes' degrees are written
        seed=seed)
    stage = config.stage("graph")  # checked with the config: bad options fail before reading
    assert isinstance(stage, GraphExpansion)
    with StepBar("expand", ["read", "expand", "write"],
                 show_progress(progress, quiet, as_json)) as bar:
        bar.step("read")
        source_log, target_log = read_pair(source, target)
        bar.step("expand")
        stage.fit(source_log, target_log)
        bar.step("write")
        table = _write_nodes(stage, out_path)
    payload, text = _summary(stage, len(source_log), table.num_rows, out_path)
    emit(as_json, payload, text, quiet)


def _write_nodes(stage: GraphExpansion, out_path: Path) -> pa.Table:
    """Writes every node the fitted ``stage`` reached, by node type then hop."""
    graph, result = stage.graph_, stage.expansion_
    assert graph is not None  # the command fits with keep_graph=True
    columns: dict[str, list[np.ndarray]] = {"node_type": [], "node_id": [], "hop": [],
                                            "degree": []}
    for node_type, hops in ((USER, result.user_hop), (ITEM, result.item_hop)):
        codes = np.flatnonzero(hops >= 0)
        codes = codes[np.argsort(hops[codes], kind="stable")]
        degree = graph.degree(node_type, result.relations, stage.as_of)
        columns["node_type"].append(np.full(len(codes), node_type, dtype=object))
        columns["node_id"].append(graph.node_ids(node_type, codes).astype(str).astype(object))
        columns["hop"].append(hops[codes].astype(np.int32))
        columns["degree"].append(degree[codes].astype(np.int64))
    table = pa.table({name: pa.array(np.concatenate(parts)) for name, parts in columns.items()})
    write_log(table, out_path)
    return table


def _summary(stage: GraphExpansion, source_rows: int, nodes: int,
             out_path: Path) -> tuple[dict[str, Any], str]:
    """The JSON payload and the text of ``expand``: every hop asked for in the JSON, the
    hops up to the last that reached something in the text."""
    result, row_hop, seeds = stage.expansion_, stage.hop_, stage.report_
    num_hops, mode, cap = stage.num_hops, stage.mode, stage.max_degree_
    rows_per_hop = np.bincount(row_hop[row_hop >= 0], minlength=num_hops + 1)
    per_hop = [
        {"hop": hop, "users": users, "items": items, "rows": int(rows_per_hop[hop]),
         "rows_cumulative": int(rows_per_hop[: hop + 1].sum())}
        for hop, (users, items) in enumerate(result.hop_counts)
    ]
    relation_names = [name for _, name, _ in result.relations]
    payload = {
        "out": str(out_path),
        "relations": relation_names,
        "seeds": {"users": seeds.seed_users, "items": seeds.seed_items},
        "hops": per_hop,
        "reached": {"users": result.num_users, "items": result.num_items},
        "source_rows": source_rows,
        "mode": mode,
        "capped": {"users": len(result.capped_users), "items": len(result.capped_items)},
        "max_degree": None if cap is None else round(cap, 6),
        "fanout": stage.fanout,
        "user_rows": {"max": seeds.max_user_rows, "users": seeds.row_capped_users,
                      "dropped": seeds.dropped_rows},
    }
    last = last_hop(result.hop_counts)
    text = format_table(
        ["hop", "users", "items", f"rows ({mode})", "rows so far"],
        [[p["hop"], p["users"], p["items"], p["rows"], p["rows_cumulative"]]
         for p in per_hop[: last + 1]],
        title=f"expansion over {', '.join(relation_names)} ({source_rows:,} source rows)")
    if last < num_hops:
        text += (f"\nthe expansion stopped at hop {last} of {num_hops}: hop {last + 1} reached "
                 f"no new user or item")
    capped = f"{len(result.capped_users):,} users, {len(result.capped_items):,} items"
    if cap is not None:
        rule = " (auto)" if stage.max_degree == "auto" else ""
        text += f"\n\nhubs above {cap:,g} edges{rule} capped: {capped}"
    elif stage.fanout is not None:
        text += f"\n\nhubs above {stage.fanout:,} edges sampled: {capped}"
    else:
        text += "\n\nno hub cap"
    if seeds.dropped_rows:
        text += (f"\nrows per user capped at {seeds.max_user_rows:,} (as select keeps them): "
                 f"{seeds.row_capped_users:,} users lose {seeds.dropped_rows:,} of the rows "
                 f"above")
    text += f"\nwrote {nodes:,} nodes to {out_path}"
    return payload, text
