"""Command-line interface: provenance and validate, including their error messages."""

from __future__ import annotations

import json
from pathlib import Path

from safety_brittleness.cli import main
from safety_brittleness.provenance import build_provenance, write_parquet


def test_provenance_prints_record(tmp_path, capsys):
    import pandas as pd

    path = tmp_path / "table.parquet"
    write_parquet(pd.DataFrame({"a": [1]}), path, build_provenance("demo_rule", {"k": 1}, seed=3))
    assert main(["provenance", str(path)]) == 0
    output = capsys.readouterr().out
    assert '"rule": "demo_rule"' in output
    assert '"seed": 3' in output


def test_provenance_missing_file(tmp_path, capsys):
    assert main(["provenance", str(tmp_path / "none.parquet")]) == 2
    assert "not found; check the path" in capsys.readouterr().err


def test_provenance_unsupported_file(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("notes")
    assert main(["provenance", str(path)]) == 2
    assert "unsupported artifact" in capsys.readouterr().err


def test_provenance_of_a_figure(tmp_path, capsys):
    from safety_brittleness.lineage import sidecar_path

    path = tmp_path / "figure.png"
    path.write_bytes(b"\x89PNG")
    assert main(["provenance", str(path)]) == 1
    assert "carries no provenance record" in capsys.readouterr().err
    sidecar_path(path).write_text(json.dumps({"rule": "plot_fig2_neurons", "inputs": {}}))
    assert main(["provenance", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["rule"] == "plot_fig2_neurons"


def test_provenance_corrupt_parquet(tmp_path, capsys):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"")
    assert main(["provenance", str(path)]) == 1
    assert "is corrupt or incomplete" in capsys.readouterr().err


def test_validate_missing_override(tmp_path, capsys):
    assert main(["validate", "--configfile", str(tmp_path / "none.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_validate_broken_yaml(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("regions:\n  set_difference:\n    points: [[0.1, 0.2]\n")
    assert main(["validate", "--configfile", str(path)]) == 2
    assert "is not valid YAML" in capsys.readouterr().err


ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = [str(ROOT / "params.yaml"), "--schema", str(ROOT / "workflow/schemas/params.schema.yaml")]


def test_validate_counts_experiments(capsys):
    assert main(["validate", *DEFAULTS]) == 0
    assert "parameters are valid: 51 experiments" in capsys.readouterr().out


def test_validate_repeated_grid_value(tmp_path, capsys):
    path = tmp_path / "repeat.yaml"
    path.write_text("regions:\n  top:\n    - {score_method: snip, sparsities: [0.01]}\n    - {score_method: snip, sparsities: [0.01]}\n")
    assert main(["validate", *DEFAULTS, "--configfile", str(path)]) == 1
    assert "appears twice under regions" in capsys.readouterr().err
