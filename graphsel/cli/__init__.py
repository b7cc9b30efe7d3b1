"""The ``graphsel`` command line.

Exit codes: 0 success, 2 bad input or usage (one line on stderr: ``error: ...``), 130 after
Ctrl-C and 143 after SIGTERM (one line each; no partial or temporary file is left), 1 a bug.
Every command that produces results prints a readable table, or one JSON object with
``--json``. Commands live in one module each and are registered here.

Threads: the package ``graphsel`` is imported before this module, so its thread policy
(:mod:`graphsel._runtime`: idle OpenMP threads sleep; ``GRAPHSEL_THREADS``) is in the
environment before any command loads torch, FAISS or scikit-learn.
"""

from __future__ import annotations

import gc
import sys

# The command modules import scikit-learn, SciPy and FAISS: a few hundred thousand objects,
# none of them garbage, which the cycle collector would walk again and again while they load
# (about a tenth of a second of every command's start). It is off until they are loaded, and
# they are then moved out of its sight (gc.freeze), so that later collections skip them too.
gc.disable()

import click  # noqa: E402

from graphsel.cli._common import (  # noqa: E402
    GraphselGroup,
    echo_error,
    examples,
    interrupt_exit,
    sigterm_raises,
)

__all__ = ["cli", "main"]


@click.group(cls=GraphselGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=examples(
                 "graphsel demo --scale 0.1",
                 "graphsel datasets prepare synthetic --scale 0.1 --out demo",
                 "graphsel select --source demo/source.parquet --target demo/target.parquet "
                 "--out selected.parquet"))
@click.version_option(package_name="graphsel")
def cli() -> None:
    """graphsel: graph-guided sample transfer for cross-domain CTR prediction."""


def _register() -> None:
    from graphsel.cli import datasets, demo, expand, run, select, validate

    for module in (validate, datasets, expand, select, run, demo):
        cli.add_command(module.command)


_register()
gc.freeze()
gc.enable()


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI and returns its exit code (used by the ``graphsel`` console script).

    SIGTERM is turned into an exception for the run (:func:`sigterm_raises`), so that it
    cleans up like Ctrl-C: exit code 143, or 130 for Ctrl-C, with one line on stderr.
    """
    with sigterm_raises():
        try:
            code = cli.main(args=argv, prog_name="graphsel", standalone_mode=False)
        except click.exceptions.Exit as exc:
            return int(exc.exit_code or 0)
        except click.ClickException as exc:  # usage errors outside a command: `graphsel -x`
            exc.show()
            return exc.exit_code
        except click.exceptions.Abort as exc:
            cause = exc.__cause__
            if isinstance(cause, KeyboardInterrupt):
                code, message = interrupt_exit(cause)
                echo_error(message)
                return code
            if cause is not None:
                raise cause from None  # e.g. an EOFError that escaped: a bug, not an abort
            echo_error("error: aborted")
            return 1
        except KeyboardInterrupt as exc:  # before or after click's own handling
            code, message = interrupt_exit(exc)
            echo_error(message)
            return code
    # without standalone mode, click returns the code of ctx.exit(code), else the command's
    # return value (None: success)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
