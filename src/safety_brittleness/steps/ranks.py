"""Steps of the rank-level study: input Gram matrices per calibration set, and subspace similarity."""

from __future__ import annotations

import logging

import pandas as pd

from safety_brittleness import models, ranks
from safety_brittleness.alignment import examples_from_frame
from safety_brittleness.provenance import write_parquet
from safety_brittleness.steps import StepContext, step

log = logging.getLogger(__name__)


@step
def compute_grams(context: StepContext) -> None:
    """X^T X of every block linear layer's inputs over the response tokens of one calibration set."""
    settings = context.params["scoring"]
    device, dtype = context.runtime()
    model, tokenizer = models.load_model(context.input["model"], device, dtype)
    frame = pd.read_parquet(context.input["calibration"])
    examples = examples_from_frame(frame, tokenizer, settings["system_prompt"])
    grams = ranks.input_grams(model, tokenizer, examples, settings["max_length"])
    ranks.save_grams(grams, context.output["grams"], context.provenance(seed=context.seed, samples=len(examples)))


@step
def compute_subspace_similarity(context: StepContext) -> None:
    """Similarity of the top safety and top utility output subspaces per block and module."""
    settings = context.params["settings"]
    device, dtype = context.runtime()
    model, _ = models.load_model(context.input["model"], device, dtype)
    safety = ranks.load_grams(context.input["safety_grams"])
    utility = ranks.load_grams(context.input["utility_grams"])
    table = pd.DataFrame(ranks.subspace_table(model, safety, utility, settings["rank_fraction"]))
    for key in ("rank_fraction", "safety_dataset", "utility_dataset"):
        table[key] = settings[key]
    log.info("subspace similarity: mean %.3f over %d layers", table["similarity"].mean(), len(table))
    write_parquet(table, context.output["similarity"], context.provenance())
