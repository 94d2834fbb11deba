"""Comparison of two results folders: bitwise values, provenance left out."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from safety_brittleness.cli import main
from safety_brittleness.compare import compare_results
from safety_brittleness.provenance import write_parquet


def make_run(root: Path, *, value: float = 0.25, provenance: str = "run", scores: torch.Tensor | None = None) -> Path:
    results = root / "results"
    frame = pd.DataFrame({
        "experiment_id": ["aligned", "top"],
        "value": [value, 0.5],
        "n": [50, 50],
        "tokens": [np.array([1, 2, 3]), np.array([4, 5])],
    })
    write_parquet(frame, results / "metrics.parquet", {"rule": "collect_metrics", "note": provenance})
    tensor = scores if scores is not None else torch.linspace(0, 1, 12, dtype=torch.bfloat16).reshape(3, 4)
    (results / "scores").mkdir(parents=True)
    save_file({"layer.weight": tensor}, str(results / "scores/snip.safetensors"), metadata={"provenance": provenance})
    (results / "tables").mkdir()
    (results / "tables/table3.csv").write_text("experiment_id,asr\naligned,0.04\n")
    return results


def test_identical_runs_differ_only_in_provenance(tmp_path):
    first = make_run(tmp_path / "a", provenance="first run")
    second = make_run(tmp_path / "b", provenance="second run")
    assert compare_results(first, second) == []


def test_one_ulp_is_a_difference(tmp_path):
    first = make_run(tmp_path / "a")
    second = make_run(tmp_path / "b", value=float(np.nextafter(0.25, 1.0)))
    differences = compare_results(first, second)
    assert len(differences) == 1
    assert differences[0].path == "metrics.parquet"
    assert differences[0].kind == "values"
    assert "column value: 1 of 2 values differ" in differences[0].detail


def test_negative_zero_differs_and_nan_matches(tmp_path):
    assert compare_results(make_run(tmp_path / "a", value=float("nan")), make_run(tmp_path / "b", value=float("nan"))) == []
    differences = compare_results(make_run(tmp_path / "c", value=0.0), make_run(tmp_path / "d", value=-0.0))
    assert [item.detail.split(":")[0] for item in differences] == ["column value"]


def test_array_cells_compare_by_bytes(tmp_path):
    first = make_run(tmp_path / "a")
    second = make_run(tmp_path / "b")
    frame = pd.read_parquet(second / "metrics.parquet")
    frame.at[1, "tokens"] = np.array([4, 6])
    write_parquet(frame, second / "metrics.parquet", {"rule": "collect_metrics"})
    differences = compare_results(first, second)
    assert [item.detail for item in differences] == ["column tokens: 1 of 2 values differ"]


def test_bfloat16_tensor_difference(tmp_path):
    changed = torch.linspace(0, 1, 12, dtype=torch.bfloat16).reshape(3, 4)
    changed[2, 3] = changed[2, 3] + 0.0078125
    differences = compare_results(make_run(tmp_path / "a"), make_run(tmp_path / "b", scores=changed))
    assert len(differences) == 1
    assert differences[0].kind == "tensors"
    assert "1 of 1 tensors differ (first: layer.weight)" in differences[0].detail


def test_missing_extra_and_changed_files(tmp_path):
    first = make_run(tmp_path / "a")
    second = make_run(tmp_path / "b")
    (first / "tables/table3.md").write_text("| a |\n")
    (second / "figures").mkdir()
    (second / "figures/fig2_neurons.png").write_bytes(b"\x89PNG")
    (second / "tables/table3.csv").write_text("experiment_id,asr\naligned,0.06\n")
    differences = {(item.kind, item.path) for item in compare_results(first, second)}
    assert differences == {("missing", "tables/table3.md"), ("extra", "figures/fig2_neurons.png"),
                           ("bytes", "tables/table3.csv")}


def test_compare_command_exit_codes(tmp_path, capsys):
    first = make_run(tmp_path / "a")
    second = make_run(tmp_path / "b")
    assert main(["compare", str(first), str(second)]) == 0
    (first / "figures").mkdir()
    (second / "figures").mkdir()
    (first / "figures/fig.pdf").write_bytes(b"%PDF created 1")
    (second / "figures/fig.pdf").write_bytes(b"%PDF created 2")
    (first / "figures/fig.pdf.provenance.json").write_text('{"inputs": "a"}')
    (second / "figures/fig.pdf.provenance.json").write_text('{"inputs": "b"}')
    assert main(["compare", str(first), str(second)]) == 1
    assert main(["compare", "--values-only", str(first), str(second)]) == 0
    assert "0 difference(s) in data files, 1 in figures, 1 in provenance records" in capsys.readouterr().err
    shutil.rmtree(second / "scores")
    assert main(["compare", "--values-only", str(first), str(second)]) == 1
    assert "missing  scores/snip.safetensors" in capsys.readouterr().out
    assert main(["compare", str(first), str(tmp_path / "nowhere")]) == 2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float_tensor_difference_reports_size(tmp_path, dtype):
    changed = torch.zeros(4, dtype=dtype)
    changed[1] = 1e-3
    first = make_run(tmp_path / "a", scores=torch.zeros(4, dtype=dtype))
    second = make_run(tmp_path / "b", scores=changed)
    (difference,) = compare_results(first, second)
    assert "largest absolute difference 0.001" in difference.detail


def test_safetensors_bytes_repeat_across_processes(tmp_path):
    """The safetensors library orders metadata keys at random per process; the writer sorts them."""
    import hashlib
    import subprocess
    import sys

    script = (
        "import sys, torch\n"
        "from safety_brittleness.provenance import write_safetensors\n"
        "tensors = {'w': torch.arange(6.0).reshape(2, 3), 'b': torch.ones(2, dtype=torch.bfloat16)}\n"
        "metadata = {name: name * 3 for name in ('provenance', 'layers', 'kind', 'format', 'shapes')}\n"
        "write_safetensors(tensors, sys.argv[1], metadata)\n"
    )
    digests = set()
    for index in range(4):
        path = tmp_path / f"{index}.safetensors"
        subprocess.run([sys.executable, "-c", script, str(path)], check=True)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1
