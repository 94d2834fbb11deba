"""Time keyword-judged ASR with early-stopped generation against plain `model.generate` to the token limit.

Run from the repository root after the workflow has produced the aligned model:

    .venv/bin/python benchmarks/evaluation_early_stop.py [--prompts 100] [--max-new-tokens 48]

For each attack variant, the evaluation prompts are answered three times in this process: with
plain batched `model.generate` to the full token limit (the reference), with the project's decoder
to the limit, and with the project's decoder and early stopping (sequences leave the batch once they
end or contain a refusal phrase). Prints a Markdown table (seconds, speed-up over the reference,
whether every verdict is identical) and writes it to docs/benchmarks.md.

A response without a refusal phrase runs to its token limit or its end token, since its keyword
verdict is not known until its last token. For the greedy variants, those responses are generated
once more, from their prompts alone, with early stopping. That time is a lower bound for early
stopping on this machine (up to timing noise), and the reference time divided by it is the
largest speed-up early stopping can reach on these prompts.
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

    # One short generation through each path first, so that neither timing includes one-off set-up.
    warm_up = evaluation.build_attack_requests(tokenizer, prompts.head(1), "vanilla", base)
    short = dataclasses.replace(base, variants=("vanilla",), max_new_tokens=2)
    plain_generate(model, tokenizer, warm_up, short)
    evaluation.evaluate_attacks(model, tokenizer, prompts.head(1), judge, short, ("paper",))

    rows = []
    for variant in arguments.variants or settings["variants"]:
        attack = dataclasses.replace(base, variants=(variant,))
        requests = evaluation.build_attack_requests(tokenizer, prompts, variant, attack)
        start = time.perf_counter()
        responses = plain_generate(model, tokenizer, requests, attack)
        reference = pd.DataFrame(evaluation.verdict_columns(judge, requests["prompt"].tolist(), responses))
        reference_seconds = time.perf_counter() - start
        seconds, verdicts = {}, {}
        for early_stop in (False, True):
            start = time.perf_counter()
            generations, _ = evaluation.evaluate_attacks(
                model, tokenizer, prompts, judge, dataclasses.replace(attack, early_stop=early_stop), ("paper",)
            )
            seconds[early_stop] = time.perf_counter() - start
            verdicts[early_stop] = generations[COLUMNS].reset_index(drop=True)
        floor, bound = "-", "-"
        without_refusal = generations.loc[~generations["refusal"].astype(bool), "prompt_id"]
        if variant != "adv_decoding" and len(without_refusal):
            start = time.perf_counter()
            evaluation.evaluate_attacks(
                model, tokenizer, prompts[prompts["id"].isin(without_refusal)], judge,
                dataclasses.replace(attack, early_stop=True), ("paper",),
            )
            seconds_floor = time.perf_counter() - start
            floor, bound = f"{seconds_floor:.1f} ({len(without_refusal)})", f"{reference_seconds / seconds_floor:.1f}x"
        # Sampled responses of `model.generate` come from another random stream, so early stopping is
        # checked against the project's own decoder to the limit, which draws the same samples.
        sampled = variant == "adv_decoding"
        compared = verdicts[False] if sampled else reference
        identical = "yes" if verdicts[True].equals(compared) else "no"
        if sampled:
            identical += " (against the project to the limit)"
        rows.append([
            variant, len(verdicts[True]), f"{verdicts[True]['refusal'].mean():.2f}", f"{reference_seconds:.1f}",
            f"{seconds[False]:.1f}", f"{seconds[True]:.1f}", f"{reference_seconds / seconds[True]:.1f}x", identical,
            floor, bound,
        ])

    label = Path(arguments.region or arguments.model).name
    text = "\n".join([
        heading(f"Keyword-judged ASR: early stopping against generation to {base.max_new_tokens} tokens"),
        f"Model `{arguments.region or arguments.model}`, {len(prompts)} evaluation prompts, max_new_tokens {base.max_new_tokens}, "
        f"batch {base.batch_size}, keyword judge.",
        "",
        table(
            ["variant", "responses", "refusal rate", "model.generate to the limit (s)", "project to the limit (s)",
             "project, early stop (s)", "speed-up", "identical verdicts",
             "responses without a refusal phrase, alone (s, count)", "largest possible speed-up"],
            rows,
        ),
    ])
    print(text)
    if not arguments.no_write:
        write_section(f"early-stop-{label}-{base.max_new_tokens}", text)


def plain_generate(model, tokenizer, requests: pd.DataFrame, attack: evaluation.AttackSettings) -> list[str]:
    """Generate a response to every request with batched `model.generate` to the token limit, the reference decoder.

    Batches are formed by prompt length, as the project does. Sampling seeds PyTorch's global
    generator once per batch.
    """
    sample = requests["variant"].iloc[0] == "adv_decoding"
    prompts = requests["prompt_as_sent"].tolist()
    order = sorted(range(len(prompts)), key=lambda index: len(prompts[index]))
    responses = [""] * len(prompts)
    tokenizer.padding_side = "left"
    for number, start in enumerate(range(0, len(order), attack.batch_size)):
        batch = order[start:start + attack.batch_size]
        encoded = tokenizer([prompts[index] for index in batch], return_tensors="pt", padding=True, add_special_tokens=False)
        options = {"do_sample": sample, "max_new_tokens": attack.max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
        if sample:
            torch.manual_seed(attack.seed * 1_000_003 + number)
            options.update(temperature=attack.temperature, top_k=0, top_p=1.0)
        with torch.no_grad():
            output = model.generate(**encoded, **options)
        texts = tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1]:], skip_special_tokens=True)
        for index, text in zip(batch, texts):
            responses[index] = text.strip()
    return responses


if __name__ == "__main__":
    main()
