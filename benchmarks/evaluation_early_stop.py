"""Time the attack evaluation of one experiment with and without early stopping on refusal phrases.

Run from the repository root after the workflow has produced the aligned model and the regions:

    .venv/bin/python benchmarks/evaluation_early_stop.py [--region results/regions/.../p0.3-q0.2.safetensors]

Prints a Markdown table row per setting and checks that both settings give identical verdicts.
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd
import torch
import yaml

from safety_brittleness import evaluation, models, regions
from safety_brittleness.judges import KeywordJudge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="results/models/aligned", help="model folder")
    parser.add_argument("--region", default=None, help="mask file to remove from the model")
    parser.add_argument("--params", default="params.yaml", help="parameter file with the evaluation settings")
    parser.add_argument("--prompts", type=int, default=None, help="use only the first N evaluation prompts (default: all)")
    arguments = parser.parse_args()

    torch.set_num_threads(os.cpu_count() or 1)
    config = yaml.safe_load(open(arguments.params))
    settings = config["evaluation"]
    model, tokenizer = models.load_model(arguments.model, torch.device("cpu"), torch.float32)
    if arguments.region:
        regions.apply_masks(model, regions.load_masks(arguments.region))
    harmful = pd.read_parquet("results/data/harmful_prompts.parquet")
    prompts = harmful[harmful["split"] == "evaluation"].head(arguments.prompts).reset_index(drop=True)
    judge = KeywordJudge.from_file()

    results = {}
    for early_stop in (True, False):
        attack = evaluation.attack_settings(settings, config["safety_system_prompt"], config["runtime"]["seed"], early_stop)
        start = time.perf_counter()
        generations, rows = evaluation.evaluate_attacks(model, tokenizer, prompts, judge, attack, ("paper",))
        results[early_stop] = (time.perf_counter() - start, generations, rows)

    stopped, full = results[True][1], results[False][1]
    columns = ["harmful", "refusal", "degenerate"]
    identical = stopped[columns].equals(full[columns])
    label = arguments.region or arguments.model
    print(f"{len(prompts)} prompts, variants {', '.join(settings['variants'])}, max_new_tokens {settings['max_new_tokens']}")
    print(f"| experiment | early stop | seconds | responses | identical verdicts |")
    print(f"|---|---|---|---|---|")
    for early_stop in (True, False):
        seconds, generations, _ = results[early_stop]
        print(f"| {label} | {'yes' if early_stop else 'no'} | {seconds:.0f} | {len(generations)} | {identical} |")
    asr = {row["metric"]: row["value"] for row in results[True][2] if row["metric"].startswith("asr_")}
    print("ASR (paper rule):", asr)


if __name__ == "__main__":
    main()
