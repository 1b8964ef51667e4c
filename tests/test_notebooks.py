"""Every notebook runs top to bottom (on the embedded data set) without a failing cell."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from piano_transcription.native_logs import is_noise

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(ROOT.glob("[1-5] *.ipynb"))


def test_there_are_five_notebooks_stored_without_outputs():
    assert [p.name[0] for p in NOTEBOOKS] == ["1", "2", "3", "4", "5"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code"), \
            f"{path.name} is stored with outputs"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name.split()[0] for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    """Executed in a temporary folder, so that what a notebook writes (data/generated, runs, output) stays there."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    assert not [line for line in stderr.splitlines() if is_noise(line)], stderr  # no native start-up lines
