"""The notebooks run top to bottom, headless, and are committed without outputs.

Each notebook is executed by a Jupyter kernel of this interpreter (checked: the kernel reports
its ``sys.prefix``), in a temporary folder, with its ``parameters`` cell overridden by an
extra cell so that the synthetic default always runs, and the Taobao head too when
``$GRAPHSEL_DATA`` has it. A cell that raises fails the test (nbclient's
``CellExecutionError``), as does a cell running longer than ``CELL_TIMEOUT_S``, and so does
any output on stderr or any text saying "warning" (a Python warning, tqdm's
``TqdmWarning: IProgress not found`` when ipywidgets is missing, a log line): a reader of
the notebook should not have to wonder whether it can be ignored.
"""

from __future__ import annotations

import os
import re
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
WARNING = re.compile(r"warn", re.IGNORECASE)


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


def _printed(notebook) -> list[str]:
    """Every text a reader sees: streams, errors and the plain-text form of rich outputs."""
    texts = [o.text for o in _outputs(notebook, "stream")]
    texts += [f"{o.ename}: {o.evalue}" for o in _outputs(notebook, "error")]
    texts += [o.data["text/plain"] for o in _outputs(notebook, "display_data")
              + _outputs(notebook, "execute_result") if "text/plain" in o.get("data", {})]
    return texts


def _check_run(notebook, name: str) -> None:
    stderr = [o.text for o in _outputs(notebook, "stream") if o.name == "stderr"]
    assert stderr == [], f"{name} wrote to stderr: {stderr}"
    warnings = [line for text in _printed(notebook) for line in text.splitlines()
                if WARNING.search(line)]
    assert warnings == [], f"{name} printed warnings: {warnings}"
    probe = notebook.cells[-1].outputs
    assert [o.get("text", "").strip() for o in probe] == [sys.prefix], \
        "the notebook ran in a kernel of another Python environment"
    figures = [o for o in _outputs(notebook, "display_data") + _outputs(notebook, "execute_result")
               if "image/png" in o.get("data", {})]
    assert len(figures) >= MIN_FIGURES[name], f"{name}: only {len(figures)} figures shown"


def test_every_notebook_is_checked():
    assert [p.name for p in NOTEBOOKS] == sorted(MIN_FIGURES)


def _ran(*outputs):
    """A notebook as ``_execute`` returns it: a cell with ``outputs``, then the probe's."""
    new = nbformat.v4
    figure = new.new_output("display_data", data={"image/png": "iVBORw0KGgo=",
                                                  "text/plain": "<Figure size 640x480>"})
    cell, probe = new.new_code_cell("run()"), new.new_code_cell(PROBE)
    cell.outputs = [*outputs, figure, figure, figure]
    probe.outputs = [new.new_output("stream", name="stdout", text=sys.prefix + "\n")]
    return new.new_notebook(cells=[cell, probe])


def test_check_run_refuses_warnings_and_stderr():
    new = nbformat.v4
    _check_run(_ran(new.new_output("stream", name="stdout", text="AUC 0.71\n")),
               "03_transfer.ipynb")
    tqdm = new.new_output("stream", name="stdout",
                          text="TqdmWarning: IProgress not found. Please update jupyter\n")
    with pytest.raises(AssertionError, match="printed warnings: .*IProgress"):
        _check_run(_ran(tqdm), "03_transfer.ipynb")
    bar = new.new_output("stream", name="stderr", text="epoch 0: 100%|##########| 3/3\n")
    with pytest.raises(AssertionError, match="wrote to stderr"):
        _check_run(_ran(bar), "03_transfer.ipynb")
    logged = new.new_output("execute_result", execution_count=1,
                            data={"text/plain": "WARNING | solver did not converge"})
    with pytest.raises(AssertionError, match="printed warnings"):
        _check_run(_ran(logged), "03_transfer.ipynb")


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
