"""Steps of the rank-level study: input Gram matrices and output bases per calibration set,
sequential ActSVD bases, and subspace similarity."""

from __future__ import annotations

import logging

import pandas as pd

from safety_brittleness import actsvd, models, ranks
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
    grams = actsvd.input_grams(model, tokenizer, examples, settings["max_length"])
    actsvd.save_grams(grams, context.output["grams"], context.provenance(seed=context.seed, samples=len(examples)))


@step
def compute_bases(context: StepContext) -> None:
    """Left singular vectors of W X^T for every block linear layer, from W and the set's Gram matrices."""
    device, dtype = context.runtime()
    model, _ = models.load_model(context.input["model"], device, dtype)
    bases = ranks.output_bases(model, actsvd.load_grams(context.input["grams"]))
    ranks.save_bases(bases, context.output["bases"], context.provenance())


@step
def compute_sequential_bases(context: StepContext) -> None:
    """Output bases of one rank edit computed block by block on the model edited so far."""
    spec = context.params["experiment"]
    settings = context.params["scoring"]
    device, dtype = context.runtime()
    model, tokenizer = models.load_model(context.input["model"], device, dtype)
    datasets = {}
    for role in context.output.keys():
        frame = pd.read_parquet(context.input[f"calibration_{role}"])
        datasets[role] = examples_from_frame(frame, tokenizer, settings["system_prompt"])
    bases = actsvd.sequential_bases(model, tokenizer, datasets, settings["max_length"], spec)
    for role, role_bases in bases.items():
        ranks.save_bases(role_bases, context.output[role], context.provenance(role=role, samples=len(datasets[role])))


@step
def compute_sequential_projection_bases(context: StepContext) -> None:
    """Safety and utility output bases of one orthogonal projection, computed block by block."""
    compute_sequential_bases(context)


@step
def compute_subspace_similarity(context: StepContext) -> None:
    """Similarity of the top safety and top utility output subspaces per block and module."""
    settings = context.params["settings"]
    safety = ranks.load_bases(context.input["safety_bases"])
    utility = ranks.load_bases(context.input["utility_bases"])
    table = pd.DataFrame(ranks.subspace_table(safety, utility, settings["rank_fraction"]))
    for key in ("rank_fraction", "safety_dataset", "utility_dataset"):
        table[key] = settings[key]
    log.info("subspace similarity: mean %.3f over %d layers", table["similarity"].mean(), len(table))
    write_parquet(table, context.output["similarity"], context.provenance())
