"""Steps that evaluate one experiment and collect all metric rows."""

from __future__ import annotations

import logging

import pandas as pd

from safety_brittleness import evaluation, models, ranks, regions
from safety_brittleness.alignment import examples_from_frame
from safety_brittleness.experiments import PARAMETER_COLUMNS
from safety_brittleness.judges import build_judge
from safety_brittleness.provenance import write_parquet
from safety_brittleness.steps import StepContext, step

log = logging.getLogger(__name__)

METRIC_COLUMNS = ["experiment_id", "metric", "value", "n", "ci_low", "ci_high", "aggregation", "judge", "task", "utility_limit"]


@step
def evaluate_experiment(context: StepContext) -> None:
    spec = context.params["experiment"]
    experiment_id = context.wildcards["experiment"]
    device, dtype = context.runtime()
    model, tokenizer = models.load_model(context.input["model"], device, dtype)
    extra_rows = []
    if "region" in context.input:
        regions.apply_masks(model, regions.load_masks(context.input["region"]))
    if "safety_bases" in context.input:
        safety = ranks.load_bases(context.input["safety_bases"])
        utility = ranks.load_bases(context.input["utility_bases"]) if "utility_bases" in context.input else None
        removed = ranks.apply_rank_edit(model, spec, safety, utility)
        extra_rows.append({"metric": "removed_rank", "value": float(removed)})
        log.info("%s: largest rank(dW) over layers %d", experiment_id, removed)
    evaluate_and_write(context, model, tokenizer, extra_rows)


def evaluate_and_write(context: StepContext, model, tokenizer, extra_rows: list[dict], benign_and_perplexity: bool = True) -> None:
    """Evaluate an edited model and write its metric rows and generations to the job's outputs.

    Attacks, utility and actual sparsity are measured. With `benign_and_perplexity`, the benign
    refusal rate and the reference perplexity are measured too. `extra_rows` adds metric rows that
    the edit itself produced.
    """
    settings = context.params["settings"]
    spec = context.params["experiment"]
    experiment_id = context.wildcards["experiment"]
    device, dtype = context.runtime()
    judge = build_judge(settings["judge"], settings, device, dtype)
    system_prompt = context.params["safety_system_prompt"]

    harmful = pd.read_parquet(context.input["harmful"])
    evaluation_prompts = harmful[harmful["split"] == "evaluation"].head(settings["prompts"]).reset_index(drop=True)
    attack = evaluation.attack_settings(settings, system_prompt, context.seed)
    generator = context.generator(model, tokenizer)
    heldout, benign_tokens = None, 0
    if benign_and_perplexity:
        benign = pd.read_parquet(context.input["benign"])
        heldout = benign[benign["split"] == "heldout"].head(settings["benign_prompts"]).reset_index(drop=True)
        benign_tokens = settings["benign_max_new_tokens"]
    generations, rows = evaluation.evaluate_responses(
        generator, tokenizer, evaluation_prompts, judge, attack, tuple(settings["aggregations"]), heldout, benign_tokens,
    )
    utility = settings["utility"]
    utility_rows = evaluation.evaluate_utility(model, tokenizer, utility["tasks"], utility["batch_size"], utility["limit"])
    perplexity_rows = []
    if benign_and_perplexity:
        references = pd.read_parquet(context.input["reference_responses"])
        examples = examples_from_frame(references, tokenizer, None)
        perplexity_rows.append(evaluation.response_perplexity(model, tokenizer, examples, settings["perplexity_max_length"]))
    sparsity = regions.actual_sparsity(model)

    metrics = pd.DataFrame(rows + perplexity_rows + utility_rows + extra_rows + [{"metric": "actual_sparsity", "value": sparsity}])
    metrics["experiment_id"] = experiment_id
    metrics = metrics.reindex(columns=METRIC_COLUMNS)
    for column in PARAMETER_COLUMNS:
        metrics[column] = spec[column]
    metrics["seed"] = context.seed
    record = context.provenance(seed=context.seed, experiment_id=experiment_id)
    write_parquet(metrics, context.output["metrics"], record)
    generations.insert(0, "experiment_id", experiment_id)
    write_parquet(generations, context.output["generations"], record)

    values = metrics.set_index(["metric", metrics["task"].fillna("")])["value"]
    paper = metrics[metrics["aggregation"].isin(["paper"]) & metrics["metric"].str.startswith("asr_")]
    summary = ", ".join(f"{row.metric} {row.value:.3f}" for row in paper.itertuples())
    log.info("%s: %s, utility %.3f, actual sparsity %.5f", experiment_id, summary,
             values[("utility_accuracy", "mean")], sparsity)


@step
def collect_metrics(context: StepContext) -> None:
    frames = [pd.read_parquet(path) for path in context.input["metrics"]]
    write_parquet(pd.concat(frames, ignore_index=True), context.output["metrics"], context.provenance())
