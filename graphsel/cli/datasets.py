"""``graphsel datasets list`` and ``graphsel datasets prepare NAME --out DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from graphsel.cli._common import GraphselGroup, emit, format_table, json_option
from graphsel.data.card import format_card
from graphsel.data.datasets import get_dataset, list_datasets, prepare
from graphsel.data.datasets.taobao import category_ids
from graphsel.errors import InputError

__all__ = ["command", "prepared_text"]


@click.group("datasets", cls=GraphselGroup)
def command() -> None:
    """List the datasets and prepare their source/target domain splits."""


@command.command("list")
@json_option
def list_command(as_json: bool) -> None:
    """List the registered datasets with a one-line description each."""
    datasets = list_datasets()
    payload = {"datasets": [{"name": d.name, "description": d.description,
                             "options": sorted(d.defaults)} for d in datasets]}
    text = format_table(["name", "description"], [[d.name, d.description] for d in datasets])
    emit(as_json, payload, text)


@command.command("prepare")
@click.argument("name")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder (created if missing) for source/target/truth Parquet and "
                   "card.json.")
@click.option("--path", type=click.Path(path_type=Path),
              help="Folder of the raw dataset (movielens-1m, taobao-userbehavior).")
@click.option("--target-genre", help="movielens-1m: genre of the target domain.")
@click.option("--target-categories",
              help="taobao-userbehavior: comma-separated category ids of the target domain.")
@click.option("--seed", type=int, help="synthetic: random seed.")
@click.option("--scale", type=float, help="synthetic: size multiplier.")
@json_option
def prepare_command(name: str, out_dir: Path, as_json: bool, **given: Any) -> None:
    """Prepare dataset NAME into --out DIR and print its card.

    Only the options a dataset takes are allowed (exit code 2 otherwise); see
    `graphsel datasets list`.
    """
    options = {key: value for key, value in given.items() if value is not None}
    accepted = set(get_dataset(name).defaults)
    for key in options:
        if key not in accepted:
            takes = [_flag(k) for k in given if k in accepted]
            raise InputError(f"option {_flag(key)} does not apply to dataset {name!r} "
                             f"(it takes: {', '.join(takes) or 'no options'})")
    if "target_categories" in options:
        options["target_categories"] = category_ids(options["target_categories"])
    card = prepare(name, out_dir, **options)
    emit(as_json, card, prepared_text(card, out_dir))


def prepared_text(card: dict[str, Any], out_dir: Path | None) -> str:
    """The card as a table, the truth summary if any, and where the files went.

    ``out_dir=None`` says that the files were in a temporary folder, since removed.
    """
    lines = [format_card(card)]
    if "truth" in card:
        truth = card["truth"]
        lines.append(f"truth: {truth['in_target_community']:,} of {truth['rows']:,} source "
                     f"rows are in the target communities")
    files = ", ".join(card["files"].values())
    lines.append(f"wrote {files} to {out_dir}" if out_dir is not None else
                 f"wrote {files} to a temporary folder, now removed (keep them with --out DIR)")
    return "\n".join(lines)


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")
