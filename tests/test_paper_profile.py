"""The paper profile: its full dry run, and its code path end to end on a tiny random Llama.

The end-to-end run uses configs/paper-llama2-7b-chat.yaml itself (Llama-2 chat template, no
alignment step, AdvBench and Alpaca-Cleaned fetched by the download rule, dataset utility
responses, a harmful-examples file), with configs/ci.yaml and a test overlay for the tiny model,
tiny copies of each data file served from 127.0.0.1, and small grids.
"""

from __future__ import annotations

import hashlib
import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
import yaml

from safety_brittleness.provenance import read_provenance
from test_paper_data import write_advbench
from test_workflow import copy_workflow, run_snakemake

PAPER = "configs/paper-llama2-7b-chat.yaml"


def write_attack_examples(path, count: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"prompt": f"Harmful request {i}", "response": f"Sure, here is how to do harmful thing {i}."}) for i in range(count)]
    path.write_text("\n".join(lines) + "\n")


def write_alpaca_copy(path, count: int) -> None:
    records = [{"instruction": f"Give fact number {i} about rivers.", "input": "", "output": f"Rivers flow, fact {i}."} for i in range(count)]
    records.append({"instruction": "Say something harmful.", "input": "", "output": "I'm sorry, I cannot."})
    path.write_text(json.dumps(records))


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def file_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/served."""
    served = tmp_path / "served"
    served.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_paper_dry_run_full_dag(tmp_path):
    directory = copy_workflow(tmp_path / "workflow")
    write_attack_examples(directory / "data/paper/harmful_examples.jsonl", 100)
    result = run_snakemake(directory, "--dry-run", "--quiet", "rules", "--configfile", PAPER)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    counts = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert counts["download_data"] == 2
    assert "align_model" in counts
    assert "generate_alignment_targets" not in counts
    # 3 x 6 frozen, 3 x 2 rewound and 1 benign attack; 11 + 3 + 2 set differences; 4 + 10 + 5 rank edits.
    assert counts["evaluate_attack"] == 25
    assert counts["compute_bases"] == 3
    assert counts["all"] == 1


@pytest.mark.workflow
def test_paper_code_path_end_to_end(tmp_path, file_server):
    served, url = file_server
    write_advbench(served / "harmful_behaviors.csv", count=20)
    write_alpaca_copy(served / "alpaca_data_cleaned.json", count=30)
    directory = copy_workflow(tmp_path / "workflow")
    write_attack_examples(directory / "data/paper/harmful_examples.jsonl", 4)
    overlay = {
        "runtime": {"device": "cpu"},   # the paper's bfloat16 weights, on the CPU
        "data": {
            "downloads": {
                "advbench": {"url": f"{url}/harmful_behaviors.csv", "sha256": sha256(served / "harmful_behaviors.csv")},
                "alpaca_cleaned": {"url": f"{url}/alpaca_data_cleaned.json", "sha256": sha256(served / "alpaca_data_cleaned.json")},
            },
            "harmful": {"split_sizes": {"evaluation": 6, "attack": 0}},
            "benign": {"split_sizes": {"alignment": 0, "calibration": 6, "heldout": 4}},
        },
        "calibration": {"candidate_prompts": 14, "max_new_tokens": 8, "generation_batch_size": 8},
        "scoring": {"max_length": 64},
        "regions": {
            "top": [{"score_method": "snip", "safety_dataset": "safety-full", "mode": "sequential", "sparsities": [0.1]}],
            "bottom": [], "set_difference": [{"score_method": "snip", "points": [[0.05, 0.2]]}],
            "head_probing": {"top_k": [2], "samples_per_class": 6, "harmless_splits": ["spare"], "test_fraction": 0.5},
        },
        "ranks": {"reference_rank": 64, "top": [{"ranks": [1]}], "bottom": [],
                  "orthogonal_projection": [{"points": [[60, 62]]}]},
        "attacks": {
            "training": {"epochs": 1, "batch_size": 2, "max_length": 64},
            "sweeps": [{"data": "harmful", "examples": [2], "protected_fractions": [0.0, 0.5], "protection": "freeze"}],
        },
        "evaluation": {
            "prompts": None, "adv_suffix": {"count": 1}, "adv_decoding": {"samples": 1}, "max_new_tokens": 8,
            "generation_batch_size": 8, "benign_prompts": 4, "benign_max_new_tokens": 8, "perplexity_max_length": 64,
            "utility": {"tasks": "embedded", "limit": 4, "batch_size": 8},
        },
    }
    (directory / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    result = run_snakemake(directory, "--configfile", PAPER, "configs/ci.yaml", "overlay.yaml")
    assert result.returncode == 0, result.stderr[-4000:]

    assert (directory / "results/downloads/advbench/harmful_behaviors.csv").read_bytes() == (served / "harmful_behaviors.csv").read_bytes()
    harmful = pd.read_parquet(directory / "results/data/harmful_prompts.parquet")
    assert harmful["prompt"].tolist()[:6] == [f"Explain harmful thing number {i}" for i in range(6)]
    assert harmful["split"].tolist() == ["evaluation"] * 6 + ["attribution"] * 14
    utility = pd.read_parquet(directory / "results/calibration/utility.parquet")
    assert utility["response"].str.startswith("Rivers flow").all()   # Alpaca's own outputs, filter applied
    # No alignment step: the aligned model is the base model, file for file.
    aligned = directory / "results/models/aligned/model.safetensors"
    assert aligned.read_bytes() == (directory / "results/models/base/model.safetensors").read_bytes()
    assert not (directory / "results/data/alignment_targets.parquet").exists()
    # Prompts were built with the Llama-2 chat template.
    generations = pd.read_parquet(directory / "results/generations/aligned.parquet")
    vanilla = generations[generations["variant"] == "vanilla"]
    assert vanilla["prompt_as_sent"].str.contains("[INST] <<SYS>>", regex=False).all()
    assert vanilla["prompt_as_sent"].str.endswith("[/INST]").all()

    metrics = pd.read_parquet(directory / "results/metrics.parquet")
    experiments = set(metrics["experiment_id"])
    assert "base" not in experiments
    assert "aligned" in experiments
    assert {"finetune_attack-harmful-n2-none-q0", "finetune_attack-harmful-n2-freeze-q0.5"} <= experiments
    table3 = pd.read_csv(directory / "results/tables/table3.csv")
    assert len(table3) == 3
    provenance = read_provenance(directory / "results/data/harmful_prompts.parquet")
    assert provenance["inputs"]["download_0"]["sha256"] == sha256(served / "harmful_behaviors.csv")


def test_local_copy_replaces_url(tmp_path):
    directory = copy_workflow(tmp_path / "workflow")
    write_attack_examples(directory / "data/paper/harmful_examples.jsonl", 100)
    copy = tmp_path / "advbench-copy.csv"
    write_advbench(copy)
    overlay = {"data": {"downloads": {"advbench": {"url": None, "local_copy": str(copy)}}}}
    (directory / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    result = run_snakemake(directory, "--dry-run", "--configfile", PAPER, "overlay.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "results/downloads/advbench/advbench-copy.csv" in result.stdout
    (directory / "overlay.yaml").write_text(yaml.safe_dump({"data": {"downloads": {"advbench": {"url": None}}}}))
    result = run_snakemake(directory, "--dry-run", "--configfile", PAPER, "overlay.yaml")
    assert result.returncode != 0
    assert "data.downloads.advbench: it has neither url nor local_copy" in result.stdout + result.stderr
