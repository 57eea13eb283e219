"""Execute the notebooks top to bottom and check what a reader sees (slow: they fit models).

Every notebook must run without an error output. ``01_quickstart`` runs with its default
(full-length) settings, which must converge: a ``ConvergenceWarning`` there fails the test; the
others fit the REE case or refit many times, so they run with short chains (``BAYESMFA_QUICK=1``)
and their warnings about those chains are expected. Cells tagged ``figure`` must display a figure
inline (a PNG from matplotlib's inline backend, or a plotly figure), and no cell may show a
matplotlib figure as text only (``<Figure size ...>``, what a non-inline backend leaves behind).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow
NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
#: Notebooks executed with their default settings (short enough for CI, and they must converge).
FULL = {"01_quickstart.ipynb"}
FIGURE_MIMES = {"image/png", "image/svg+xml", "application/vnd.plotly.v1+json"}


def _code_cells(nb: nbformat.NotebookNode) -> list[tuple[int, nbformat.NotebookNode]]:
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def _figure_cells(nb: nbformat.NotebookNode) -> list[int]:
    return [i for i, c in _code_cells(nb) if "figure" in c.metadata.get("tags", [])]


def test_outputs_are_stripped_in_git():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for i, cell in _code_cells(nb):
            assert not cell.get("outputs"), f"{path.name} cell {i}: outputs are committed"
            assert cell.get("execution_count") is None, f"{path.name} cell {i}: execution count is committed"


def test_every_notebook_draws_and_uses_the_public_api():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert _figure_cells(nb), f"{path.name}: no cell tagged 'figure'"
        source = "\n".join(c.source for _, c in _code_cells(nb))
        assert "from bayesmfa" not in source and "import bayesmfa." not in source, f"{path.name}: imports beyond `import bayesmfa as bm`"
        assert "matplotlib.use(" not in source, f"{path.name}: forces a matplotlib backend (figures would not display)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    full = path.name in FULL
    monkeypatch.setenv("BAYESMFA_QUICK", "0" if full else "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's default (inline) backend, as in Jupyter
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()

    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in _code_cells(nb) for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: error outputs {errors}"

    if full:
        stderr = "".join(o.get("text", "") for _, c in _code_cells(nb) for o in c.get("outputs", [])
                         if o.get("output_type") == "stream" and o.get("name") == "stderr")
        assert "ConvergenceWarning" not in stderr, f"{path.name} (default settings) does not converge:\n{stderr}"

    for i in _figure_cells(nb):
        mimes = {m for o in nb.cells[i].get("outputs", []) for m in o.get("data", {})}
        assert mimes & FIGURE_MIMES, f"{path.name} cell {i}: no figure displayed (outputs: {sorted(mimes)})"
    for i, cell in _code_cells(nb):
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if str(data.get("text/plain", "")).startswith("<Figure") and not set(data) & FIGURE_MIMES:
                pytest.fail(f"{path.name} cell {i}: a figure shown as text only ({data['text/plain']})")
