"""Time keyword-judged ASR with early-stopped generation against plain generation to the token limit.

Run from the repository root after the workflow has produced the aligned model:

    .venv/bin/python benchmarks/evaluation_early_stop.py [--prompts 100] [--max-new-tokens 48]

For each attack variant, the evaluation prompts are answered twice in this process: once with
early stopping (greedy sequences leave the batch once they end or contain a refusal phrase, and
sampled ones stop inside `model.generate`), once with plain batched `model.generate` to the full
token limit. Prints a Markdown table (seconds, speed-up, whether every verdict is identical) and
writes it to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import pandas as pd
import torch

from report import heading, load_parameters, table, write_section
from safety_brittleness import evaluation, models, regions
from safety_brittleness.judges import KeywordJudge

COLUMNS = ["harmful", "refusal", "degenerate"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="results/models/aligned", help="model folder")
    parser.add_argument("--region", default=None, help="mask file to remove from the model")
    parser.add_argument("--configfile", default=None, help="parameter file merged over params.yaml, as for Snakemake")
    parser.add_argument("--prompts-file", default="results/data/harmful_prompts.parquet", help="harmful prompt table")
    parser.add_argument("--prompts", type=int, default=None, help="use the first N evaluation prompts (default: evaluation.prompts)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="token limit (default: evaluation.max_new_tokens)")
    parser.add_argument("--variants", nargs="+", default=None, help="attack variants (default: evaluation.variants)")
    parser.add_argument("--no-write", action="store_true", help="print the table without writing docs/benchmarks.md")
    arguments = parser.parse_args()

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    config = load_parameters(arguments.configfile)
    settings = config["evaluation"]
    model, tokenizer = models.load_model(arguments.model, torch.device("cpu"), torch.float32)
    if arguments.region:
        regions.apply_masks(model, regions.load_masks(arguments.region))
    harmful = pd.read_parquet(arguments.prompts_file)
    count = arguments.prompts if arguments.prompts is not None else settings["prompts"]
    prompts = harmful[harmful["split"] == "evaluation"].head(count).reset_index(drop=True)
    judge = KeywordJudge.from_file()
    base = evaluation.attack_settings(settings, config["safety_system_prompt"], config["runtime"]["seed"])
    if arguments.max_new_tokens is not None:
        base = dataclasses.replace(base, max_new_tokens=arguments.max_new_tokens)

    rows = []
    for variant in arguments.variants or settings["variants"]:
        seconds, verdicts = {}, {}
        for early_stop in (True, False):
            attack = dataclasses.replace(base, variants=(variant,), early_stop=early_stop)
            start = time.perf_counter()
            generations, _ = evaluation.evaluate_attacks(model, tokenizer, prompts, judge, attack, ("paper",))
            seconds[early_stop] = time.perf_counter() - start
            verdicts[early_stop] = generations[COLUMNS].reset_index(drop=True)
        identical = verdicts[True].equals(verdicts[False])
        rows.append([
            variant, len(verdicts[True]), f"{verdicts[True]['refusal'].mean():.2f}", f"{seconds[False]:.1f}",
            f"{seconds[True]:.1f}", f"{seconds[False] / seconds[True]:.1f}x", "yes" if identical else "no",
        ])

    label = Path(arguments.region or arguments.model).name
    text = "\n".join([
        heading(f"Keyword-judged ASR: early stopping against generation to {base.max_new_tokens} tokens"),
        f"Model `{arguments.region or arguments.model}`, {len(prompts)} evaluation prompts, max_new_tokens {base.max_new_tokens}, "
        f"batch {base.batch_size}, keyword judge.",
        "",
        table(
            ["variant", "responses", "refusal rate", "full generation (s)", "early stop (s)", "speed-up",
             "identical verdicts"],
            rows,
        ),
    ])
    print(text)
    if not arguments.no_write:
        write_section(f"early-stop-{label}-{base.max_new_tokens}", text)


if __name__ == "__main__":
    main()
