"""``graphsel validate SOURCE [TARGET]``: check logs against the schema and print their card."""

from __future__ import annotations

import click

from graphsel.cli._common import emit, examples, json_option
from graphsel.data.card import DatasetCard
from graphsel.data.io import check_paths, write_json
from graphsel.data.log import TS_UNITS, check_pair, read_log, read_pair
from graphsel.select.config import SelectionConfig

__all__ = ["command"]


@click.command("validate", epilog=examples(
    "graphsel validate demo/source.parquet demo/target.parquet",
    "graphsel validate demo/source.parquet --json",
    "graphsel validate logs/clicks.csv --ts-unit ms --card card.json"))
@click.argument("source", type=click.Path(path_type=str))
@click.argument("target", type=click.Path(path_type=str), required=False)
@click.option("--card", "card_path", type=click.Path(path_type=str),
              help="Also write the card as JSON to this file (only when the logs are valid).")
@click.option("--ts-unit", type=click.Choice(list(TS_UNITS)), default="s", show_default=True,
              help="Unit of the logs' ts column; other units are converted to Unix seconds.")
@json_option
def command(source: str, target: str | None, card_path: str | None, ts_unit: str,
            as_json: bool) -> None:
    """Check SOURCE (and TARGET) against the schema; print their card.

    SOURCE and TARGET are Parquet files, directories of Parquet files, or CSV files with the
    columns user_id, item_id, ts, label, domain (and optionally behavior and side features).
    With two logs, they must also pass the checks that `graphsel select` and `graphsel run`
    make of a pair (shared users or items, one type per shared feature, at least 5 target
    rows, both labels in the target, and the default selection's own needs, e.g. at least
    10 target rows for its 10 neighbours), so "valid: yes" means those commands accept them.
    Exit code 2 on the first problem found, with a one-line reason naming the file and the
    column.
    """
    check_paths({"SOURCE": source, "TARGET": target}, files={"--card": card_path})
    if target is None:
        card = DatasetCard.of(read_log(source, ts_unit=ts_unit))
    else:
        source_log, target_log = read_pair(source, target, ts_unit=ts_unit)
        check_pair(source_log, target_log)
        SelectionConfig().build().check_inputs(source_log, target_log)  # select's defaults
        card = DatasetCard.of(source_log, target_log)
    if card_path is not None:
        write_json(card.to_json(), card_path)
    emit(as_json, {"valid": True, **card.to_json()}, card.format() + "\n\nvalid: yes")
