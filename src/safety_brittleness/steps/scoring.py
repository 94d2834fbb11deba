"""Steps that compute importance scores."""

from __future__ import annotations

import pandas as pd

from safety_brittleness import models, scoring
from safety_brittleness.alignment import examples_from_frame
from safety_brittleness.provenance import write_safetensors
from safety_brittleness.steps import StepContext, step, to_json


def _score(context: StepContext, method) -> None:
    settings = context.params["settings"]
    device, dtype = context.runtime()
    model, tokenizer = models.load_model(context.input["model"], device, dtype)
    frame = pd.read_parquet(context.input["calibration"])
    examples = examples_from_frame(frame, tokenizer, settings["system_prompt"])
    scores = method(model, tokenizer, examples, settings["max_length"])
    record = context.provenance(seed=context.seed, samples=len(examples))
    write_safetensors(scores, context.output["scores"], {"provenance": to_json(record)})


@step
def score_snip(context: StepContext) -> None:
    _score(context, scoring.snip_scores)


@step
def score_wanda(context: StepContext) -> None:
    _score(context, scoring.wanda_scores)
