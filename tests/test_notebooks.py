"""The notebooks run top to bottom (nbclient, a python3 kernel) and are committed without outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 300


def _read(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def test_the_three_notebooks_are_there():
    assert {path.stem for path in NOTEBOOKS} == {"inference", "style_transfer_and_singing", "latent_interpolation"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_committed_without_outputs(path):
    code = [cell for cell in _read(path).cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel's torch: tiny models run faster on one thread
    from nbclient import NotebookClient

    notebook = _read(path)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})  # runs in a scratch folder
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
    errors = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
              if output.output_type == "error"]
    assert not errors
    html = [output.get("data", {}).get("text/html", "") for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.outputs]
    images = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
              if "image/png" in output.get("data", {})]
    assert any("<audio" in fragment for fragment in html) and images  # it played audio and drew plots
