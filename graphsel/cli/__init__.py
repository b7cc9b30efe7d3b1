"""The ``graphsel`` command line.

Exit codes: 0 success, 2 bad input or usage (one line on stderr: ``error: ...``), 1 a bug.
Every command that produces results prints a readable table, or one JSON object with
``--json``. Commands live in one module each and are registered here.
"""

from __future__ import annotations

import sys

import click

from graphsel.cli._common import GraphselGroup

__all__ = ["cli", "main"]


@click.group(cls=GraphselGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="graphsel")
def cli() -> None:
    """graphsel: graph-guided sample transfer for cross-domain CTR prediction."""


def _register() -> None:
    from graphsel.cli import datasets, demo, expand, run, select, validate

    for module in (validate, datasets, expand, select, run, demo):
        cli.add_command(module.command)


_register()


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI and returns its exit code (used by the ``graphsel`` console script)."""
    try:
        cli.main(args=argv, prog_name="graphsel", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
