"""Lineage: a chain of artifacts traced back to its raw input, with every hash checked again."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from safety_brittleness.cli import main
from safety_brittleness.lineage import LineageError, mismatches, resolve_target, sidecar_path, trace
from safety_brittleness.provenance import build_provenance, write_json, write_parquet


@pytest.fixture
def chain(tmp_path):
    """raw.txt -> results/data/prompts.parquet -> results/evaluation/exp-1.parquet -> results/figures/fig.png."""
    results = tmp_path / "results"
    raw = tmp_path / "raw.txt"
    raw.write_text("a harmful prompt\n")
    prompts = results / "data" / "prompts.parquet"
    prompts.parent.mkdir(parents=True)
    write_parquet(pd.DataFrame({"prompt": ["a"]}), prompts, build_provenance("prepare", {"seed": 0}, inputs={"source": raw}, seed=0))
    metrics = results / "evaluation" / "exp-1.parquet"
    metrics.parent.mkdir(parents=True)
    record = build_provenance("evaluate", {}, inputs={"prompts": prompts, "again": [prompts]}, seed=0)
    write_parquet(pd.DataFrame({"value": [0.5]}), metrics, record)
    figure = results / "figures" / "fig.png"
    figure.parent.mkdir(parents=True)
    figure.write_bytes(b"\x89PNG figure")
    write_json(build_provenance("plot", {}, inputs={"metrics": metrics}), sidecar_path(figure))
    return {"results": results, "raw": raw, "prompts": prompts, "metrics": metrics, "figure": figure}


def test_trace_reaches_the_raw_input(chain):
    tree = trace(chain["figure"])
    assert tree["rule"] == "plot"
    (metrics,) = tree["inputs"]
    assert (metrics["path"], metrics["rule"], metrics["matches"]) == (str(chain["metrics"]), "evaluate", True)
    again, prompts = metrics["inputs"]   # inputs in name order: again[0], prompts
    assert again["input"] == "again[0]"
    assert again["rule"] == "prepare"
    assert prompts["seen"] is True   # the same file is expanded once
    (raw,) = again["inputs"]
    assert (raw["path"], raw["raw_input"], raw["matches"]) == (str(chain["raw"]), True, True)
    assert mismatches(tree) == []


def test_changed_input_is_flagged(chain, capsys):
    chain["raw"].write_text("an edited prompt\n")
    changed = mismatches(trace(chain["figure"]))
    assert [node["path"] for node in changed] == [str(chain["raw"])]
    assert main(["lineage", str(chain["figure"])]) == 1
    captured = capsys.readouterr()
    assert "CHANGED (recorded" in captured.out
    assert f"1 input(s) differ from what was used: {chain['raw']}" in captured.err
    chain["raw"].unlink()
    assert mismatches(trace(chain["figure"]))[0]["missing"] is True


def test_names_and_ids_resolve(chain, capsys):
    results = chain["results"]
    assert resolve_target("fig", results) == chain["figure"]
    assert resolve_target("exp-1", results) == chain["metrics"]
    with pytest.raises(LineageError, match="'fig9' is neither a file nor a figure, table or experiment id"):
        resolve_target("fig9", results)
    assert main(["lineage", "exp-1", "--results", str(results), "--json"]) == 0
    tree = json.loads(capsys.readouterr().out)
    assert tree["rule"] == "evaluate"
    assert main(["lineage", "fig9", "--results", str(results)]) == 2


def test_corrupt_artifact_is_an_error(chain, capsys):
    chain["metrics"].write_bytes(b"not parquet")
    assert main(["lineage", str(chain["figure"])]) == 2
    assert "is corrupt or incomplete" in capsys.readouterr().err


def test_truncated_inputs_are_named(tmp_path):
    import torch
    from safetensors.torch import save_file

    from safety_brittleness.provenance import CorruptArtifactError, check_readable

    tensors = tmp_path / "scores.safetensors"
    save_file({"w": torch.ones(64, 64)}, str(tensors))
    check_readable(tensors)
    tensors.write_bytes(tensors.read_bytes()[:-100])
    with pytest.raises(CorruptArtifactError, match=r"input '.*scores.safetensors' is corrupt or truncated \(16356 bytes on disk, 16456 expected"):
        check_readable(tensors)
    table = tmp_path / "metrics.parquet"
    pd.DataFrame({"value": range(100)}).to_parquet(table)
    check_readable(table)
    table.write_bytes(table.read_bytes()[:-20])
    with pytest.raises(CorruptArtifactError, match="metrics.parquet' is corrupt or truncated"):
        check_readable(table)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\x10")
    with pytest.raises(CorruptArtifactError, match="shorter than a safetensors header"):
        check_readable(folder)


def test_stale_temporaries_are_removed(tmp_path):
    from safety_brittleness.steps import StepContext, _remove_stale_temporaries

    output = tmp_path / "evaluation/aligned.parquet"
    output.parent.mkdir()
    models = tmp_path / "models"
    (models / ".aligned.k3j4h5g6").mkdir(parents=True)     # a model folder a killed job left
    stale = [output.parent / ".aligned.parquet.ab12cd_9.parquet", output.parent / ".aligned.parquet.provenance.json.zz99yy88.json"]
    kept = [output.parent / ".aligned-copy.parquet.ab12cd_9.parquet", output.parent / ".aligned.parquet.long-name.parquet",
            output.parent / "aligned.parquet"]
    for path in stale + kept:
        path.write_text("partial")
    context = StepContext(rule="evaluate_experiment", input={},
                          output={"metrics": str(output), "model": str(models / "aligned")}, params={})
    _remove_stale_temporaries(context)
    assert [path.exists() for path in stale] == [False, False]
    assert not (models / ".aligned.k3j4h5g6").exists()
    assert all(path.exists() for path in kept)


def test_safetensors_sidecar_repeats_the_header(tmp_path):
    import torch
    from safetensors.torch import save_file

    from safety_brittleness.steps import StepContext, _write_sidecars

    scores = tmp_path / "snip.safetensors"
    record = {"rule": "score_snip", "params": {"samples": 4}}
    save_file({"w": torch.ones(2)}, str(scores), metadata={"provenance": json.dumps(record)})
    _write_sidecars(StepContext(rule="score_snip", input={}, output={"scores": str(scores)}, params={}))
    assert json.loads(sidecar_path(scores).read_text()) == record
