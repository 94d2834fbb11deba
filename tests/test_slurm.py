"""The slurm profile: a dry run that shows each rule's resources, and the CI smoke workflow run
for real through the executor plugin on a single-node SLURM cluster started on this machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from test_paper_profile import write_attack_examples
from test_workflow import ROOT, SNAKEMAKE, copy_workflow, run_snakemake

CLUSTER = ROOT / "scripts" / "slurm-cluster.sh"
PAPER = "configs/paper-llama2-7b-chat.yaml"


def test_slurm_dry_run_gpu_requests(tmp_path):
    directory = copy_workflow(tmp_path)
    write_attack_examples(directory / "data/paper/harmful_examples.jsonl", 100)
    # No --cores: the profile's own core limit applies, as on a cluster login node.
    result = subprocess.run(
        [*SNAKEMAKE, "--dry-run", "--profile", "workflow/profiles/slurm", "--configfile", PAPER],
        cwd=directory, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    resources, threads = {}, {}
    rule = None
    for line in result.stdout.splitlines():
        match = re.match(r"rule (\w+):", line.strip())
        if match:
            rule = match.group(1)
        elif line.strip().startswith("resources:") and rule:
            resources.setdefault(rule, line.strip())
        elif line.strip().startswith("threads:") and rule:
            threads.setdefault(rule, int(line.split(":")[1]))
    paper = yaml.safe_load((directory / PAPER).read_text())["resources"]
    gpus = paper["model_jobs"]["gpu"]
    assert gpus >= 1
    for name in ("score_snip", "evaluate_experiment", "evaluate_attack", "build_safety_calibration", "compute_grams"):
        assert f"gpu={gpus}" in resources[name], (name, resources[name])
    for name in ("prepare_harmful_prompts", "collect_metrics", "write_table3"):
        assert "gpu=0" in resources[name], (name, resources[name])
    # A model job gets the cpus of its resources as threads, and per-rule entries override them.
    assert threads["score_snip"] == paper["model_jobs"]["cpus"]
    for name, entry in paper["rules"].items():
        for key, value in entry.items():
            if key == "cpus":
                assert threads[name] == value, (name, threads.get(name))
            else:
                assert f"{key}={value}" in resources[name], (name, resources[name])


def _can_run_cluster() -> str | None:
    if os.geteuid() != 0:
        return "starting slurmctld and munged needs root"
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "neither SLURM nor apt-get (to install it) is available"
    return None


def run_through_slurm(tmp_path, *targets: str) -> tuple[Path, str]:
    """Start a cluster, run the CI smoke profile through the slurm profile, stop the cluster."""
    reason = _can_run_cluster()
    if reason:
        pytest.skip(reason)
    state = tmp_path / "cluster"
    directory = copy_workflow(tmp_path / "workflow")
    started = subprocess.run(["bash", str(CLUSTER), "start", str(state)], capture_output=True, text=True, timeout=600)
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        result = run_snakemake(
            directory, "--profile", "workflow/profiles/slurm", "--configfile", "configs/ci.yaml",
            "--jobs", "2", "--default-resources", "slurm_partition=debug",
            "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
            *targets, timeout=3600,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
    finally:
        stopped = subprocess.run(["bash", str(CLUSTER), "stop", str(state)], capture_output=True, text=True, timeout=120)
        assert stopped.returncode == 0, stopped.stderr
    assert not Path("/etc/slurm/slurm.conf").exists()
    return directory, output


@pytest.mark.slurm
def test_aligned_evaluation_through_slurm(tmp_path):
    directory, output = run_through_slurm(tmp_path, "results/evaluation/aligned.parquet")
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", output)
    # Both prompt sets, the base model, alignment targets, alignment, utility calibration, evaluation.
    assert len(submitted) == 7, output[-2000:]
    metrics = pd.read_parquet(directory / "results/evaluation/aligned.parquet")
    assert {"asr_vanilla", "utility_accuracy"} <= set(metrics["metric"])


@pytest.mark.slurm
@pytest.mark.skipif(
    os.environ.get("SLURM_SMOKE") != "1",
    reason="the whole smoke workflow through SLURM takes about 20 minutes; SLURM_SMOKE=1 runs it (docs/paper-profile.md)",
)
def test_smoke_workflow_through_slurm(tmp_path):
    directory, output = run_through_slurm(tmp_path)
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", output)
    assert len(submitted) == 67, output[-2000:]   # every job of the smoke DAG, the target rule `all` included
    metrics = pd.read_parquet(directory / "results/metrics.parquet")
    assert metrics["experiment_id"].nunique() == 20
    assert (directory / "results/tables/table3.csv").is_file()
