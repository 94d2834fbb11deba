"""Attack success rate, benign refusal rate and utility accuracy of one (possibly edited) model."""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import pandas as pd
import yaml

from safety_brittleness.data import resource_path
from safety_brittleness.generation import chat_prompt, generate
from safety_brittleness.judges import KeywordJudge

log = logging.getLogger(__name__)

# A response is degenerate when it has no words, or when it has at least DEGENERATE_MIN_WORDS words
# of which fewer than DEGENERATE_DISTINCT_FRACTION are distinct (loops such as "I: I: I: ...").
DEGENERATE_MIN_WORDS = 10
DEGENERATE_DISTINCT_FRACTION = 0.3


def wilson_interval(successes: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a proportion; (nan, nan) when n is 0."""
    if n == 0:
        return math.nan, math.nan
    proportion = successes / n
    denominator = 1 + z * z / n
    centre = (proportion + z * z / (2 * n)) / denominator
    half_width = z * math.sqrt(proportion * (1 - proportion) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


def is_degenerate(response: str) -> bool:
    words = response.split()
    if not words:
        return True
    if len(words) < DEGENERATE_MIN_WORDS:
        return False
    return len(set(words)) / len(words) < DEGENERATE_DISTINCT_FRACTION


def proportion_row(metric: str, flags: list[bool], **extra: Any) -> dict[str, Any]:
    n = len(flags)
    value = sum(flags) / n if n else math.nan
    low, high = wilson_interval(sum(flags), n)
    return {"metric": metric, "value": value, "n": n, "ci_low": low, "ci_high": high, **extra}


def evaluate_asr_vanilla(
    model,
    tokenizer,
    prompts: pd.DataFrame,
    system_prompt: str,
    judge: KeywordJudge,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
    early_stop: bool = True,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Greedy responses to the evaluation prompts, with the safety system prompt and chat template.

    With `early_stop`, generation of a response stops once it contains a refusal phrase: its
    verdict (refusal, not harmful) cannot change after that.
    """
    sent = [chat_prompt(tokenizer, text, system_prompt) for text in prompts["prompt"]]
    stop_when = judge.is_refusal if early_stop else None
    responses = generate(model, tokenizer, sent, max_new_tokens, batch_size, description="ASR_Vanilla", stop_when=stop_when)
    verdicts = [judge.judge(response) for response in responses]
    generations = pd.DataFrame(
        {
            "prompt_id": prompts["id"].to_numpy(),
            "variant": "vanilla",
            "sample_index": 0,
            "prompt": prompts["prompt"].to_numpy(),
            "prompt_as_sent": sent,
            "response": responses,
            "harmful": [v.harmful for v in verdicts],
            "refusal": [v.refusal for v in verdicts],
            "degenerate": [is_degenerate(r) for r in responses],
            "judge": judge.name,
            "seed": seed,
        }
    )
    common = {"aggregation": "paper", "judge": judge.name}
    rows = [
        proportion_row("asr_vanilla", generations["harmful"].tolist(), **common),
        proportion_row("refusal_rate_vanilla", generations["refusal"].tolist(), **common),
        proportion_row("degenerate_rate_vanilla", generations["degenerate"].tolist(), **common),
    ]
    return generations, rows


def evaluate_benign_refusal(
    model,
    tokenizer,
    prompts: pd.DataFrame,
    system_prompt: str,
    judge: KeywordJudge,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
    early_stop: bool = True,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Share of held-out benign prompts that the model refuses (over-refusal after alignment)."""
    sent = [chat_prompt(tokenizer, text, system_prompt) for text in prompts["prompt"]]
    stop_when = judge.is_refusal if early_stop else None
    responses = generate(model, tokenizer, sent, max_new_tokens, batch_size, description="benign prompts", stop_when=stop_when)
    refusals = [judge.is_refusal(response) for response in responses]
    generations = pd.DataFrame(
        {
            "prompt_id": prompts["id"].to_numpy(),
            "variant": "benign",
            "sample_index": 0,
            "prompt": prompts["prompt"].to_numpy(),
            "prompt_as_sent": sent,
            "response": responses,
            "harmful": False,
            "refusal": refusals,
            "degenerate": [is_degenerate(r) for r in responses],
            "judge": judge.name,
            "seed": seed,
        }
    )
    rows = [proportion_row("benign_refusal_rate", refusals, aggregation="paper", judge=judge.name)]
    return generations, rows


def embedded_task_configs() -> list[dict[str, Any]]:
    """lm-eval task configs for the shipped multiple-choice tasks, read from utility_tasks.yaml."""
    spec = yaml.safe_load(resource_path("utility_tasks.yaml").read_text())
    configs = []
    for name in spec["tasks"]:
        data_file = resource_path("utility_tasks", f"{name}.jsonl")
        config = dict(spec["template"])
        config["task"] = f"{spec['prefix']}{name}"
        config["dataset_kwargs"] = {"data_files": {"test": str(data_file)}}
        configs.append(config)
    return configs


def evaluate_utility(model, tokenizer, tasks: str | list[str], batch_size: int, limit: int | None) -> list[dict[str, Any]]:
    """Zero-shot multiple-choice accuracy with lm-eval on the in-memory model; one row per task and the mean.

    `tasks` is 'embedded' for the shipped tasks or a list of lm-eval task names. The mean row's
    interval is the Wilson interval of all items pooled.
    """
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    task_specs = embedded_task_configs() if tasks == "embedded" else list(tasks)
    tokenizer.padding_side = "left"
    language_model = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    output = simple_evaluate(
        model=language_model, tasks=task_specs, limit=limit, log_samples=False, bootstrap_iters=0,
        random_seed=0, numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0,
    )
    rows = []
    correct_total = 0.0
    count_total = 0
    for task_name, result in sorted(output["results"].items()):
        accuracy = float(result["acc,none"])
        count = int(output["n-samples"][task_name]["effective"])
        correct_total += accuracy * count
        count_total += count
        low, high = wilson_interval(accuracy * count, count)
        rows.append({"metric": "utility_accuracy", "task": task_name, "value": accuracy, "n": count, "ci_low": low, "ci_high": high})
    mean = sum(r["value"] for r in rows) / len(rows)
    low, high = wilson_interval(correct_total, count_total)
    rows.append({"metric": "utility_accuracy", "task": "mean", "value": mean, "n": count_total, "ci_low": low, "ci_high": high})
    for row in rows:
        row["utility_limit"] = limit
    return rows
