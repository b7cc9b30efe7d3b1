"""The notebooks run top to bottom, headless, and are committed without outputs.

Each notebook is executed by a Jupyter kernel of this interpreter (checked: the kernel reports
its ``sys.prefix``), in a temporary folder, with its ``parameters`` cell overridden by an
extra cell so that the synthetic default always runs, and the Taobao head too when
``$GRAPHSEL_DATA`` has it. A cell that raises fails the test (nbclient's
``CellExecutionError``), as does a cell running longer than ``CELL_TIMEOUT_S``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.conftest import DATASET_DIRS, data_path

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 120
PROBE = "import sys; print(sys.prefix)"
# One OpenMP thread per kernel: gradient boosting's OpenMP threads spin-wait, and on a busy
# machine (pytest-xdist, a shared CI runner) they run 20-30 times slower than one thread.
KERNEL_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# figures each notebook must display: a figure that silently fails to render is a failure
MIN_FIGURES = {"01_expansion.ipynb": 4, "02_selection.ipynb": 4, "03_transfer.ipynb": 3}


def _parameters_index(notebook) -> int:
    tagged = [i for i, cell in enumerate(notebook.cells)
              if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "a notebook needs exactly one cell tagged 'parameters'"
    return tagged[0]


def _execute(path: Path, workdir: Path, overrides: str):
    """Runs ``path`` with ``overrides`` after its parameters cell; returns the notebook."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.insert(_parameters_index(notebook) + 1, nbformat.v4.new_code_cell(overrides))
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = nbclient.NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}})
    client.execute(env=KERNEL_ENV)
    return notebook


def _outputs(notebook, output_type: str) -> list[dict]:
    return [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.outputs if output.output_type == output_type]


def _check_run(notebook, name: str) -> None:
    probe = notebook.cells[-1].outputs
    assert [o.get("text", "").strip() for o in probe] == [sys.prefix], \
        "the notebook ran in a kernel of another Python environment"
    figures = [o for o in _outputs(notebook, "display_data") + _outputs(notebook, "execute_result")
               if "image/png" in o.get("data", {})]
    assert len(figures) >= MIN_FIGURES[name], f"{name}: only {len(figures)} figures shown"


def test_every_notebook_is_checked():
    assert [p.name for p in NOTEBOOKS] == sorted(MIN_FIGURES)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_the_synthetic_default(path, tmp_path):
    notebook = _execute(path, tmp_path, 'DATASET = "synthetic"')
    _check_run(notebook, path.name)
    assert list(tmp_path.iterdir()) == [], "a notebook wrote files into its working folder"


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_the_taobao_head(path, tmp_path):
    folder = data_path("taobao-userbehavior")
    root = str(folder)[: -len(DATASET_DIRS["taobao-userbehavior"]) - 1]
    notebook = _execute(path, tmp_path,
                        f'DATA = {root!r}\nDATASET = "taobao-userbehavior"')
    _check_run(notebook, path.name)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    _parameters_index(notebook)
    for number, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {number} has outputs"
            assert cell.execution_count is None, f"{path.name} cell {number} has a count"
