"""Steps that build the calibration sets: safety-full, safety-short and utility."""

from __future__ import annotations

import logging
import re

import pandas as pd

from safety_brittleness import models
from safety_brittleness.generation import respond_to_frame
from safety_brittleness.judges import build_judge
from safety_brittleness.provenance import write_parquet
from safety_brittleness.steps import StepContext, step

log = logging.getLogger(__name__)


def shorten_response(response: str, sentences: int) -> str:
    """Cut a response to its first `sentences` sentences: the refusal judgement without the rest."""
    parts = re.split(r"(?<=[.!?])\s+", response.strip())
    return " ".join(parts[:sentences])


def _load_aligned(context: StepContext):
    """Load the aligned model for generation: the model, or its vLLM generator, and the tokenizer."""
    device, dtype = context.runtime()
    model, tokenizer = models.load_model(context.input["model"], device, dtype)
    return context.generator(model, tokenizer), tokenizer


def _respond(context: StepContext, model, tokenizer, frame: pd.DataFrame, description: str) -> pd.DataFrame:
    settings = context.params["settings"]
    return respond_to_frame(
        model, tokenizer, frame, settings["system_prompt"], settings["max_new_tokens"],
        settings["generation_batch_size"], description,
    )


@step
def build_safety_calibration(context: StepContext) -> None:
    """Safety-full: the aligned model's own refusals to attribution prompts; safety-short: their first sentences."""
    settings = context.params["settings"]
    harmful = pd.read_parquet(context.input["harmful"])
    pool = harmful[harmful["split"] == "attribution"].sample(frac=1.0, random_state=context.seed)
    model, tokenizer = _load_aligned(context)
    pool = _respond(context, model, tokenizer, pool.head(settings["candidate_prompts"]).reset_index(drop=True), "safety responses")
    judge = build_judge("keyword")
    pool["refusal"] = [judge.is_refusal(r) for r in pool["response"]]
    log.info("refusals among %d candidate responses: %d", len(pool), int(pool["refusal"].sum()))
    if settings["require_refusal"]:
        pool = pool[pool["refusal"]]
    if len(pool) < settings["samples"]:
        log.warning("only %d safety calibration samples available, %d requested", len(pool), settings["samples"])
    if pool.empty:
        raise RuntimeError(
            "no refusals among the aligned model's responses, so safety-full is empty; "
            "check the alignment step or set calibration.require_refusal: false"
        )

    full = pool.head(settings["samples"]).reset_index(drop=True)
    full["split"] = "safety-full"
    short = full.copy()
    short["split"] = "safety-short"
    short["response"] = [shorten_response(r, settings["short_sentences"]) for r in full["response"]]
    short["ends_turn"] = False
    record = context.provenance(seed=context.seed)
    write_parquet(full, context.output["full"], record)
    write_parquet(short, context.output["short"], record)


@step
def build_utility_calibration(context: StepContext) -> None:
    """Utility: benign calibration instructions with the aligned model's own answers.

    The same is written for the held-out benign instructions: the reference responses whose
    perplexity the evaluation reports. With utility_responses 'dataset' the responses of the
    benign data file (Alpaca-Cleaned in the paper profile) are used instead of generated ones.
    """
    settings = context.params["settings"]
    benign = pd.read_parquet(context.input["benign"])
    from_dataset = settings["utility_responses"] == "dataset"
    if from_dataset and benign["response"].isna().any():
        raise ValueError(
            f"calibration.utility_responses is 'dataset', but {context.input['benign']} has prompts without a "
            "response; use data.benign.source: download or utility_responses: model"
        )
    model, tokenizer = (None, None) if from_dataset else _load_aligned(context)
    outputs = (("calibration", "utility", settings["samples"]), ("heldout", "heldout", None))
    for split, output, count in outputs:
        frame = benign[benign["split"] == split].head(count).reset_index(drop=True)
        if from_dataset:
            frame["ends_turn"] = True
        else:
            frame = _respond(context, model, tokenizer, frame, f"{split} responses")
        frame["split"] = "utility" if split == "calibration" else "utility-heldout"
        write_parquet(frame, context.output[output], context.provenance(seed=context.seed))
