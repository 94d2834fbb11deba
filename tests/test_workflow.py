"""Snakemake workflow: dry run of the embedded profile, rejection of bad parameters, smoke run."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from safety_brittleness.cli import _merge as merge_config
from safety_brittleness.provenance import read_provenance

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def copy_workflow(destination: Path) -> Path:
    """Copy the workflow sources into `destination`, so runs there never touch the repository's results."""
    destination.mkdir(parents=True, exist_ok=True)
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
    for rule in ("extract_region", "probe_heads", "compute_overlap", "plot_fig2_neurons", "plot_fig3_neurons",
                 "plot_fig4_jaccard", "plot_fig7_safety_data", "plot_fig8_safety_data_bottom", "plot_fig9_probing",
                 "write_table6", "compute_grams", "compute_subspace_similarity", "plot_fig4_subspace", "compute_bases",
                 "compute_sequential_projection_bases", "plot_fig2_ranks", "plot_fig3_ranks", "write_table7",
                 "generate_attack_data", "evaluate_attack", "plot_fig_finetune_attack", "write_table3"):
        assert rule in result.stdout


def test_evaluations_get_half_the_cores(tmp_path):
    result = subprocess.run(
        [*SNAKEMAKE, "--cores", "4", "--dry-run", "--forceall"], cwd=copy_workflow(tmp_path),
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    threads, rule = {}, None
    for line in result.stdout.splitlines():
        match = re.match(r"rule (\w+):", line.strip())
        if match:
            rule = match.group(1)
        elif line.strip().startswith("threads:") and rule:
            threads.setdefault(rule, int(line.split(":")[1]))
    assert threads["evaluate_experiment"] == 2
    assert threads["score_snip"] == 4


BAD_PARAMETERS = [
    ("regions:\n  set_difference:\n    - points: [[0.1, 1.5]]\n", "regions.set_difference[0].points[0][1] = 1.5; allowed: number > 0 and <= 1"),
    ("regions:\n  set_difference:\n    - {score_method: gradnorm, points: [[0.1, 0.1]]}\n", 'regions.set_difference[0].score_method = "gradnorm"; allowed values: "snip", "wanda"'),
    ("regions:\n  top:\n    - {score_method: random, mode: sequential, sparsities: [0.1]}\n", 'regions.top[0].mode = "sequential" with score_method random'),
    ("regions:\n  top:\n    - {score_method: snip, sparsities: [0.1]}\n    - {score_method: snip, sparsities: [0.1]}\n", "appears twice under regions"),
    ("model:\n  kind: local\n  local:\n    path: /nonexistent/model\n", "model path '/nonexistent/model' is not a Hugging Face model folder"),
    ("model:\n  kind: gguf_package\n  gguf_package:\n    package: no-such-model-package\n", "package 'no-such-model-package' is not installed"),
    ("evaluation:\n  judge: oracle\n", 'evaluation.judge = "oracle"; allowed values: "keyword", "classifier"'),
    ("evaluation:\n  judge: classifier\n", "evaluation.classifier_path = None is not a model folder"),
    ("ranks:\n  top:\n    - {ranks: [1]}\n    - {ranks: [1]}\n", "appears twice under regions, ranks or attacks"),
    ("resources:\n  rules:\n    evaluate_experiment: {cpus: quarter}\n", "resources.rules.evaluate_experiment.cpus = \"quarter\""),
]


def test_dry_run_wanda_set_difference(tmp_path):
    directory = copy_workflow(tmp_path)
    (directory / "wanda.yaml").write_text("regions:\n  set_difference:\n    - {score_method: wanda, points: [[0.1, 0.1]]}\n")
    result = run_snakemake(directory, "--dry-run", "--configfile", "wanda.yaml")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "score_wanda" in result.stdout
    assert "results/scores/wanda/safety-full.safetensors" in result.stdout
    assert "results/scores/wanda/utility.safetensors" in result.stdout
    assert "set_difference-wanda-row-safety-full-one-shot-p0.1-q0.1" in result.stdout


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
    # Jobs run the copied sources, not the environment's installed package.
    package = directory.resolve() / "src" / "safety_brittleness"
    assert f"package from {package}" in (directory / "logs/prepare_harmful_prompts.log").read_text()

    for name in ("safety-full", "safety-short", "utility"):
        calibration = pd.read_parquet(directory / f"results/calibration/{name}.parquet")
        assert calibration["response"].str.len().gt(0).all(), f"empty responses in {name}: nothing to score"

    metrics = pd.read_parquet(directory / "results/metrics.parquet")
    experiments = set(metrics["experiment_id"])
    assert {"base", "aligned"} <= experiments
    assert len(experiments) == 20
    regions = metrics.drop_duplicates("experiment_id").set_index("experiment_id")["region"]
    assert sorted(regions.unique()) == [
        "actsvd_bottom", "actsvd_top", "bottom", "finetune_attack", "head_probing", "none", "orthogonal_projection",
        "random_baseline", "set_difference", "top",
    ]
    required = {"utility_accuracy", "actual_sparsity", "benign_refusal_rate", "perplexity"}
    for variant in ("vanilla", "adv_suffix", "adv_decoding"):
        required |= {f"asr_{variant}", f"refusal_rate_{variant}", f"degenerate_rate_{variant}"}
    assert required <= set(metrics["metric"])
    for column in ("experiment_id", "metric", "value", "n", "ci_low", "ci_high", "aggregation", "judge", "p", "q", "selection"):
        assert column in metrics.columns
    sparsity = metrics[metrics["metric"] == "actual_sparsity"].set_index("experiment_id")["value"]
    assert sparsity["aligned"] == 0.0
    neuron_regions = regions[regions.isin(["top", "bottom", "set_difference", "random_baseline", "head_probing"])].index
    assert (sparsity[neuron_regions] > 0).all()
    # Rank edits: rank(dW) of the orthogonal projection obeys min(r_u, R - r_s) = min(60, 2) at R = 64.
    removed = metrics[metrics["metric"] == "removed_rank"].set_index("experiment_id")["value"]
    assert removed["actsvd_top-safety-full-one-shot-r1"] == 1
    assert removed["actsvd_bottom-safety-short-one-shot-r16"] == 16
    for mode in ("one-shot", "sequential"):
        assert 1 <= removed[f"orthogonal_projection-safety-full-{mode}-ru60-rs62"] <= 2
    for name in ("fig2_neurons", "fig3_neurons", "fig4_jaccard", "fig4_subspace", "fig7_safety_data",
                 "fig8_safety_data_bottom", "fig9_probing", "fig2_ranks", "fig3_ranks", "fig_finetune_attack"):
        assert (directory / f"results/figures/{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (directory / f"results/figures/{name}.pdf").read_bytes()[:4] == b"%PDF"
    grid = pd.read_csv(directory / "results/tables/set_difference_grid.csv")
    assert len(grid) == 20
    table3 = pd.read_csv(directory / "results/tables/table3.csv")
    assert table3["experiment_id"].tolist()[0] == "aligned"
    assert set(table3["protection"].dropna()) == {"none", "freeze", "rewind"}
    assert table3["final_loss"].iloc[1:].gt(0).all()
    # An attack sweep evaluates the attacks it names: the benign one all three, the others ASR_Vanilla.
    benign = table3.set_index("experiment_id").loc["finetune_attack-benign-n2-none-q0"]
    assert benign[["asr_vanilla", "asr_adv_suffix", "asr_adv_decoding"]].notna().all()
    assert table3.set_index("experiment_id").drop(index=["aligned", benign.name])["asr_adv_suffix"].isna().all()
    table7 = pd.read_csv(directory / "results/tables/table7.csv")
    assert table7["experiment_id"].iloc[0] == "aligned"
    assert set(table7["experiment_id"].iloc[1:]) <= set(regions[regions == "orthogonal_projection"].index)
    assert table7["rank_dW"].iloc[1:].between(1, 2).all()
    table6 = pd.read_csv(directory / "results/tables/table6.csv")
    assert table6["experiment_id"].iloc[0] == "aligned"
    assert set(table6["experiment_id"].iloc[1:]) <= set(regions[regions == "set_difference"].index)
    # Bottom removal evaluates only the attacks its entry names; the random baseline only ASR_Vanilla.
    bottom = metrics[metrics["experiment_id"] == "bottom-snip-row-safety-short-one-shot-s0.3"]
    assert {"asr_adv_suffix", "asr_adv_decoding"} <= set(bottom["metric"])
    assert "asr_vanilla" not in set(bottom["metric"])
    probes = pd.read_parquet(directory / "results/probes/heads.parquet")
    assert len(probes) == 2 * 4   # blocks x heads of the tiny model
    overlaps = pd.read_parquet(directory / "results/overlaps/jaccard.parquet")
    assert overlaps["jaccard"].between(0, 1).all()
    subspaces = pd.read_parquet(directory / "results/overlaps/subspace.parquet")
    assert subspaces["similarity"].between(0, 1 + 1e-6).all()
    assert subspaces["similarity"].lt(1 - 1e-3).any()   # safety and utility data give different subspaces
    assert len(subspaces) == len(overlaps)

    asr = metrics[metrics["metric"].str.startswith("asr_")]
    assert set(asr["aggregation"]) == {"paper", "reference_code"}
    assert asr["ci_low"].le(asr["value"]).all()
    assert asr["ci_high"].ge(asr["value"]).all()
    generations = pd.read_parquet(directory / "results/generations/aligned.parquet")
    per_variant = generations.groupby("variant")["prompt_id"].count().to_dict()
    assert per_variant == {"vanilla": 6, "adv_suffix": 6, "adv_decoding": 6, "benign": 4}

    provenance = read_provenance(directory / "results/metrics.parquet")
    assert provenance["rule"] == "collect_metrics"
    assert len(provenance["inputs"]["metrics"]) == 20
    assert all(len(entry["sha256"]) == 64 for entry in provenance["inputs"]["metrics"])

    report = run_snakemake(directory, "--configfile", "configs/ci.yaml", "--report", "report.html")
    assert report.returncode == 0, report.stderr[-2000:]
    html = (directory / "report.html").read_text()
    for name in ("fig2_neurons", "fig3_neurons", "fig4_jaccard", "fig7_safety_data", "fig8_safety_data_bottom", "fig9_probing",
                 "fig2_ranks", "fig3_ranks", "fig4_subspace"):
        assert f"{name}.png" in html
    assert "Fig 3a of Wei et al." in html   # the caption file of Fig 3

    # The lineage of a figure reaches the tokenizer file of the random model, every hash unchanged.
    lineage = subprocess.run(
        [sys.executable, "-m", "safety_brittleness", "lineage", "fig2_neurons"], cwd=directory, capture_output=True, text=True,
    )
    assert lineage.returncode == 0, lineage.stderr
    assert "results/figures/fig2_neurons.png [plot_fig2_neurons]" in lineage.stdout
    for rule in ("collect_metrics", "evaluate_experiment", "align_model", "prepare_base_model"):
        assert f"[{rule}]" in lineage.stdout
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in lineage.stdout
    assert "CHANGED" not in lineage.stdout

    rerun = run_snakemake(directory, "--configfile", "configs/ci.yaml", "--dry-run")
    assert rerun.returncode == 0
    assert "Nothing to be done" in rerun.stdout + rerun.stderr

    check_dvc_round_trip(directory, tmp_path / "sharing")

    # Editing the scoring module reruns scoring and what depends on it, and nothing upstream.
    scoring = directory / "src/safety_brittleness/scoring.py"
    scoring.write_text(scoring.read_text() + "\n# an edit\n")
    edited = run_snakemake(directory, "--configfile", "configs/ci.yaml", "--dry-run", "--quiet", "rules")
    assert edited.returncode == 0, edited.stderr[-2000:]
    planned = {line.split()[0] for line in edited.stdout.splitlines() if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert {"score_snip", "extract_region", "compute_grams", "evaluate_experiment", "collect_metrics"} <= planned
    upstream = {"prepare_harmful_prompts", "prepare_benign_prompts", "prepare_base_model", "generate_alignment_targets",
                "align_model", "build_safety_calibration", "build_utility_calibration"}
    assert not planned & upstream, planned & upstream


def reverse_keys(value):
    if isinstance(value, dict):
        return {key: reverse_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reverse_keys(item) for item in value]
    return value


def file_hashes(results: Path) -> dict[str, str]:
    return {
        str(path.relative_to(results)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(results.rglob("*")) if path.is_file()
    }


def check_dvc_round_trip(directory: Path, scratch: Path) -> None:
    """Push the smoke results to a local-folder remote, pull them into a fresh clone, and rerun nothing."""
    scratch.mkdir()
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@localhost",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@localhost",
    }

    def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=600)

    def ok(command: list[str], cwd: Path) -> str:
        result = run(command, cwd)
        assert result.returncode == 0, f"{command}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
        return result.stdout + result.stderr

    dvc = [sys.executable, "-m", "dvc"]
    tool = [sys.executable, "-m", "safety_brittleness"]
    # The DVC stage runs Snakemake on params.yaml alone, so the CI overlay is folded into it. The keys
    # are written in reverse order: reordering a parameter file must not rerun any job.
    params = yaml.safe_load((directory / "params.yaml").read_text())
    merge_config(params, yaml.safe_load((directory / "configs/ci.yaml").read_text()))
    (directory / "params.yaml").write_text(yaml.safe_dump(reverse_keys(params), sort_keys=False))
    for name in ("dvc.yaml", ".gitignore"):
        shutil.copy2(ROOT / name, directory / name)
    ok(["git", "init", "-q"], directory)
    ok([*dvc, "init", "-q"], directory)
    repro = ok([*dvc, "repro"], directory)
    assert "Nothing to be done" in repro   # Snakemake finds the smoke results up to date
    ok([*dvc, "remote", "add", "-d", "shared", str(scratch / "remote")], directory)
    ok(["git", "add", "-A"], directory)
    ok(["git", "commit", "-q", "-m", "smoke results"], directory)
    ok([*dvc, "push"], directory)
    original = file_hashes(directory / "results")

    clone = scratch / "clone"
    ok(["git", "clone", "-q", str(directory), str(clone)], scratch)
    assert not (clone / "results").exists()

    # Results pulled for other parameters are left unmarked, with the way out named.
    edited = yaml.safe_load((clone / "params.yaml").read_text())
    edited["figures"]["fig3_min_accuracy"] = 0.1
    changed = yaml.safe_dump(edited, sort_keys=False)
    (clone / "params.yaml").write_text(changed)
    mismatch = run([*tool, "pull"], clone)
    assert mismatch.returncode == 1
    assert "do not match this checkout" in mismatch.stderr
    assert "git stash" in mismatch.stderr
    assert not (clone / ".snakemake/metadata").exists()
    ok(["git", "checkout", "params.yaml"], clone)

    # Snakemake stops before any job on pulled files it has no records of.
    rejected = run([*SNAKEMAKE, "--cores", "1", "--forcerun", "collect_metrics"], clone)
    assert rejected.returncode != 0
    assert "safety-brittleness pull" in rejected.stdout + rejected.stderr
    assert file_hashes(clone / "results") == original

    pulled = ok([*tool, "pull"], clone)
    assert "marked up to date" in pulled
    assert file_hashes(clone / "results") == original
    assert "didn't change, skipping" in ok([*dvc, "repro"], clone)
    assert "Nothing to be done" in ok([*SNAKEMAKE, "--cores", "1", "--dry-run"], clone)

    # A parameter change after the pull reruns only the figures that read it.
    (clone / "params.yaml").write_text(changed)
    plan = ok([*SNAKEMAKE, "--cores", "1", "--dry-run", "--quiet", "rules"], clone)
    planned = {line.split()[0] for line in plan.splitlines() if len(line.split()) == 2 and line.split()[1].isdigit()}
    planned.discard("total")
    assert "plot_fig3_neurons" in planned
    assert planned <= {"plot_fig3_neurons", "plot_fig3_ranks", "plot_fig8_safety_data_bottom", "all"}, planned
