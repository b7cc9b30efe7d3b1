"""``graphsel validate SOURCE [TARGET]``: check logs against the schema and print their card."""

from __future__ import annotations

import click

from graphsel.cli._common import emit, json_option
from graphsel.data.card import DatasetCard
from graphsel.data.io import check_output_file, write_json
from graphsel.data.log import read_log, read_pair

__all__ = ["command"]


@click.command("validate")
@click.argument("source", type=click.Path(path_type=str))
@click.argument("target", type=click.Path(path_type=str), required=False)
@click.option("--card", "card_path", type=click.Path(path_type=str),
              help="Also write the card as JSON to this file (only when the logs are valid).")
@json_option
def command(source: str, target: str | None, card_path: str | None, as_json: bool) -> None:
    """Check SOURCE (and TARGET) against the log schema and print their card.

    SOURCE and TARGET are Parquet files, directories of Parquet files, or CSV files with the
    columns user_id, item_id, ts, label, domain (and optionally behavior and side features).
    With two logs, they must share at least one user or item. Exit code 2 on the first
    problem found, with a one-line reason naming the file and the column.
    """
    if card_path is not None:
        check_output_file(card_path)
    card = DatasetCard.of(read_log(source)) if target is None else DatasetCard.of(
        *read_pair(source, target))
    if card_path is not None:
        write_json(card.to_json(), card_path)
    emit(as_json, {"valid": True, **card.to_json()}, card.format() + "\n\nvalid: yes")
