"""Time one evaluation step by step against the evaluation code of another checkout, with identical outputs.

Run from the repository root after the workflow has produced the aligned model:

    git worktree add /tmp/baseline <commit>
    .venv/bin/python benchmarks/evaluation_steps.py --baseline /tmp/baseline [--region FILE] [--threads 1]

Each code runs in its own process on the same model, prompts and parameters: first the responses
to the three attacks and the benign prompts, then the reference perplexity, then lm-eval utility.
One short generation comes first, so no timing includes one-off set-up. The table gives the
seconds of each step for the baseline and this checkout, and whether the responses, verdicts and
metric values are identical (perplexity to a relative 1e-6). Evaluations run on `--threads`
threads, 1 by default, as two side by side do in the workflow on two cores.

With `--repeats N` the two codes run N times each, alternating which goes first (baseline then
project, project then baseline, ...), so a slow spell of the machine falls on both. The table
gives the median seconds of each step with the smallest and largest in brackets.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from report import heading, load_parameters, table, write_section

STEPS = ["responses", "perplexity", "utility"]
JUDGED = ["response", "harmful", "refusal", "degenerate"]


def run_steps(arguments) -> None:
    """Evaluate the model with the package on sys.path; write step times, generations and metrics to --output."""
    import torch

    from safety_brittleness import evaluation, models, regions
    from safety_brittleness.alignment import examples_from_frame
    from safety_brittleness.judges import KeywordJudge

    torch.set_num_threads(arguments.threads)
    config = load_parameters(arguments.configfile)
    settings = config["evaluation"]
    model, tokenizer = models.load_model(arguments.model, torch.device("cpu"), torch.float32)
    if arguments.region:
        regions.apply_masks(model, regions.load_masks(arguments.region))
    judge = KeywordJudge.from_file()
    results = Path(arguments.results)
    harmful = pd.read_parquet(results / "data" / "harmful_prompts.parquet")
    prompts = harmful[harmful["split"] == "evaluation"].head(settings["prompts"]).reset_index(drop=True)
    benign = pd.read_parquet(results / "data" / "benign_prompts.parquet")
    heldout = benign[benign["split"] == "heldout"].head(settings["benign_prompts"]).reset_index(drop=True)
    references = pd.read_parquet(results / "calibration" / "utility-heldout.parquet")
    system_prompt = config["safety_system_prompt"]
    attack = evaluation.attack_settings(settings, system_prompt, config["runtime"]["seed"])
    aggregations = tuple(settings["aggregations"])

    evaluation.evaluate_attacks(model, tokenizer, prompts.head(2), judge, attack, ("paper",))
    seconds = {}
    start = time.perf_counter()
    if hasattr(evaluation, "evaluate_responses"):
        generations, rows = evaluation.evaluate_responses(
            model, tokenizer, prompts, judge, attack, aggregations, heldout, settings["benign_max_new_tokens"]
        )
    else:
        # Code before every response was generated in one pass: attacks, then benign prompts.
        generations, rows = evaluation.evaluate_attacks(model, tokenizer, prompts, judge, attack, aggregations)
        benign_generations, benign_rows = evaluation.evaluate_benign_refusal(
            model, tokenizer, heldout, system_prompt, judge, settings["benign_max_new_tokens"],
            settings["generation_batch_size"], attack.seed, settings["early_stop"],
        )
        generations = pd.concat([generations, benign_generations], ignore_index=True)
        rows = rows + benign_rows
    seconds["responses"] = time.perf_counter() - start
    start = time.perf_counter()
    examples = examples_from_frame(references, tokenizer, None)
    rows.append(evaluation.response_perplexity(model, tokenizer, examples, settings["perplexity_max_length"]))
    seconds["perplexity"] = time.perf_counter() - start
    start = time.perf_counter()
    utility = settings["utility"]
    rows.extend(evaluation.evaluate_utility(model, tokenizer, utility["tasks"], utility["batch_size"], utility["limit"]))
    seconds["utility"] = time.perf_counter() - start

    output = Path(arguments.output)
    generations.to_parquet(output / "generations.parquet")
    pd.DataFrame(rows)[["metric", "value"]].assign(task=[row.get("task") for row in rows]).to_parquet(
        output / "metrics.parquet"
    )
    (output / "seconds.json").write_text(json.dumps(seconds))


def run_code(source: Path, arguments, output: Path) -> dict[str, float]:
    """Run the steps in a new process with `source` first on the Python path; return the seconds of each step."""
    command = [
        sys.executable, __file__, "--steps-only", "--output", str(output), "--model", arguments.model,
        "--results", arguments.results, "--threads", str(arguments.threads),
    ]
    for option in ("region", "configfile"):
        if getattr(arguments, option):
            command += [f"--{option}", getattr(arguments, option)]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source), str(Path(__file__).parent)])}
    subprocess.run(command, env=environment, check=True)
    return json.loads((output / "seconds.json").read_text())


def identical(first: Path, second: Path) -> tuple[bool, bool]:
    """Return whether two runs have identical responses and verdicts, and identical metric values (perplexity to 1e-6)."""
    key = ["variant", "prompt_id", "sample_index"]
    generations = [pd.read_parquet(path / "generations.parquet").sort_values(key).reset_index(drop=True) for path in (first, second)]
    same_responses = len(generations[0]) == len(generations[1]) and generations[0][key + JUDGED].equals(generations[1][key + JUDGED])
    metrics = [pd.read_parquet(path / "metrics.parquet").reset_index(drop=True) for path in (first, second)]
    perplexity = [frame["metric"] == "perplexity" for frame in metrics]
    same_metrics = (
        metrics[0]["metric"].equals(metrics[1]["metric"])
        and metrics[0].loc[~perplexity[0], "value"].equals(metrics[1].loc[~perplexity[1], "value"])
        and ((metrics[0].loc[perplexity[0], "value"] - metrics[1].loc[perplexity[1], "value"]).abs()
             <= 1e-6 * metrics[0].loc[perplexity[0], "value"].abs()).all()
    )
    return same_responses, bool(same_metrics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="checkout whose src/ contains the evaluation code to compare against")
    parser.add_argument("--model", default="results/models/aligned", help="model folder")
    parser.add_argument("--region", default=None, help="mask file to remove from the model")
    parser.add_argument("--results", default="results", help="results folder with data/ and calibration/ tables")
    parser.add_argument("--configfile", default=None, help="parameter file merged over params.yaml, as for Snakemake")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each evaluation")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each code, alternating which goes first")
    parser.add_argument("--no-write", action="store_true", help="print the table without writing docs/benchmarks.md")
    parser.add_argument("--steps-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", default=None, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.steps_only:
        run_steps(arguments)
        return
    if arguments.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {arguments.repeats}")
    if not arguments.baseline or not (Path(arguments.baseline) / "src" / "safety_brittleness").is_dir():
        parser.error(f"--baseline {arguments.baseline!r} is not a checkout with src/safety_brittleness; "
                     "create one with: git worktree add /tmp/baseline <commit>")

    sources = {"baseline": Path(arguments.baseline) / "src", "project": Path(__file__).resolve().parent.parent / "src"}
    seconds: dict[str, list[dict[str, float]]] = {"baseline": [], "project": []}
    same_responses, same_metrics = True, True
    for repeat in range(arguments.repeats):
        order = ["baseline", "project"] if repeat % 2 == 0 else ["project", "baseline"]
        with tempfile.TemporaryDirectory() as folder:
            runs = {name: Path(folder) / name for name in order}
            for name in order:
                runs[name].mkdir()
                seconds[name].append(run_code(sources[name], arguments, runs[name]))
            responses, metrics = identical(runs["baseline"], runs["project"])
        same_responses, same_metrics = same_responses and responses, same_metrics and metrics
        print(f"repeat {repeat + 1} of {arguments.repeats}: " + ", ".join(
            f"{name} {sum(seconds[name][-1].values()):.1f} s" for name in order), flush=True)

    def summary(values: list[float]) -> tuple[float, str]:
        middle = statistics.median(values)
        spread = f" ({min(values):.1f} to {max(values):.1f})" if len(values) > 1 else ""
        return middle, f"{middle:.1f}{spread}"

    rows = []
    for step in STEPS + ["all"]:
        cells = {
            name: summary([sum(run.values()) if step == "all" else run[step] for run in runs_of_code])
            for name, runs_of_code in seconds.items()
        }
        rows.append([step, cells["baseline"][1], cells["project"][1], f"{cells['baseline'][0] / cells['project'][0]:.2f}x"])
    baseline_commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=arguments.baseline, capture_output=True, text=True
    ).stdout.strip() or "unknown"
    label = Path(arguments.region or arguments.model).name.removesuffix(".safetensors")
    text = "\n".join([
        heading(f"One evaluation step by step: {label}"),
        f"Model `{arguments.model}`" + (f" with region `{arguments.region}` removed" if arguments.region else "")
        + f", {arguments.threads} torch thread(s), baseline code at commit `{baseline_commit}`, "
        + (f"{arguments.repeats} runs of each code, alternating which runs first; median seconds, "
           "smallest to largest in brackets." if arguments.repeats > 1 else "one run of each code."),
        "",
        table(["step", "baseline (s)", "project (s)", "speed-up of the medians"], rows),
        "",
        f"Responses and verdicts identical in every run: {'yes' if same_responses else 'no'}. "
        f"Metric values identical (perplexity to a relative 1e-6): {'yes' if same_metrics else 'no'}.",
    ])
    print(text)
    if not arguments.no_write:
        write_section(f"evaluation-steps-{label}", text)


if __name__ == "__main__":
    main()
