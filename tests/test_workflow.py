"""Snakemake workflow: dry run of the embedded profile, rejection of bad parameters, smoke run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from safety_brittleness.provenance import read_provenance

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def copy_workflow(destination: Path) -> Path:
    """Copy the workflow sources into `destination`, so runs there never touch the repository's results."""
    for name in ("Snakefile", "params.yaml"):
        shutil.copy2(ROOT / name, destination / name)
    for name in ("workflow", "configs", "src"):
        shutil.copytree(ROOT / name, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
    return destination


def run_snakemake(directory: Path, *arguments: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, "--cores", "2", *arguments], cwd=directory, capture_output=True, text=True, timeout=timeout
    )


def test_dry_run_default_params(tmp_path):
    result = run_snakemake(copy_workflow(tmp_path), "--dry-run")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "align_model" in result.stdout
    assert "extract_set_difference" in result.stdout
    assert "plot_fig2_neurons" in result.stdout


BAD_PARAMETERS = [
    ("regions:\n  set_difference:\n    points: [[0.1, 1.5]]\n", "regions.set_difference.points[0][1] = 1.5; allowed: number > 0 and <= 1"),
    ("regions:\n  set_difference:\n    score_method: gradnorm\n", 'regions.set_difference.score_method = "gradnorm"; allowed values: "snip", "wanda"'),
    ("model:\n  kind: local\n  local:\n    path: /nonexistent/model\n", "model path '/nonexistent/model' is not a Hugging Face model folder"),
    ("model:\n  kind: gguf_package\n  gguf_package:\n    package: no-such-model-package\n", "package 'no-such-model-package' is not installed"),
    ("evaluation:\n  judge: oracle\n", 'evaluation.judge = "oracle"; allowed values: "keyword", "classifier"'),
    ("evaluation:\n  judge: classifier\n", "evaluation.classifier_path = None is not a model folder"),
]


def test_dry_run_wanda_set_difference(tmp_path):
    directory = copy_workflow(tmp_path)
    (directory / "wanda.yaml").write_text("regions:\n  set_difference:\n    score_method: wanda\n")
    result = run_snakemake(directory, "--dry-run", "--configfile", "wanda.yaml")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "score_wanda" in result.stdout
    assert "results/scores/wanda/safety-full.safetensors" in result.stdout
    assert "score_snip" not in result.stdout


@pytest.mark.parametrize(("override", "expected"), BAD_PARAMETERS)
def test_bad_parameters_fail_before_compute(tmp_path, override, expected):
    directory = copy_workflow(tmp_path)
    (directory / "bad.yaml").write_text(override)
    result = run_snakemake(directory, "--configfile", "bad.yaml")
    output = result.stderr + result.stdout
    assert result.returncode != 0
    assert expected in output
    assert "Traceback" not in output
    assert not (directory / "results").exists()


@pytest.mark.workflow
def test_smoke_workflow_end_to_end(tmp_path):
    directory = copy_workflow(tmp_path)
    result = run_snakemake(directory, "--configfile", "configs/ci.yaml")
    assert result.returncode == 0, result.stderr[-4000:]

    metrics = pd.read_parquet(directory / "results/metrics.parquet")
    experiments = set(metrics["experiment_id"])
    assert {"base", "aligned"} <= experiments
    assert len(experiments) == 4
    required = {"utility_accuracy", "actual_sparsity", "benign_refusal_rate", "perplexity"}
    for variant in ("vanilla", "adv_suffix", "adv_decoding"):
        required |= {f"asr_{variant}", f"refusal_rate_{variant}", f"degenerate_rate_{variant}"}
    assert required <= set(metrics["metric"])
    for column in ("experiment_id", "metric", "value", "n", "ci_low", "ci_high", "aggregation", "judge", "p", "q", "selection"):
        assert column in metrics.columns
    sparsity = metrics[metrics["metric"] == "actual_sparsity"].set_index("experiment_id")["value"]
    assert sparsity["aligned"] == 0.0
    assert (sparsity.drop(["base", "aligned"]) > 0).all()
    assert (directory / "results/figures/fig2_neurons.png").stat().st_size > 0
    assert (directory / "results/figures/fig2_neurons.pdf").stat().st_size > 0
    grid = pd.read_csv(directory / "results/tables/set_difference_grid.csv")
    assert len(grid) == 4

    asr = metrics[metrics["metric"].str.startswith("asr_")]
    assert set(asr["aggregation"]) == {"paper", "reference_code"}
    assert asr["ci_low"].le(asr["value"]).all()
    assert asr["ci_high"].ge(asr["value"]).all()
    generations = pd.read_parquet(directory / "results/generations/aligned.parquet")
    per_variant = generations.groupby("variant")["prompt_id"].count().to_dict()
    assert per_variant == {"vanilla": 6, "adv_suffix": 18, "adv_decoding": 30, "benign": 4}

    provenance = read_provenance(directory / "results/metrics.parquet")
    assert provenance["rule"] == "collect_metrics"
    assert len(provenance["inputs"]["metrics"]) == 4
    assert all(len(entry["sha256"]) == 64 for entry in provenance["inputs"]["metrics"])

    rerun = run_snakemake(directory, "--configfile", "configs/ci.yaml", "--dry-run")
    assert rerun.returncode == 0
    assert "Nothing to be done" in rerun.stdout + rerun.stderr
