"""Steps of the fine-tuning attacks: the harmful training examples, and attack plus evaluation in one job."""

from __future__ import annotations

import logging

import pandas as pd
import torch
from safetensors.torch import load_file

from safety_brittleness import attacks, models, regions
from safety_brittleness.alignment import examples_from_frame
from safety_brittleness.generation import respond_to_frame
from safety_brittleness.provenance import write_parquet
from safety_brittleness.steps import StepContext, step
from safety_brittleness.steps.evaluation import evaluate_and_write

log = logging.getLogger(__name__)


def read_attack_file(path: str) -> pd.DataFrame:
    """Read user-supplied harmful examples (Parquet, or JSON Lines) into the attack data table."""
    frame = pd.read_parquet(path) if str(path).endswith(".parquet") else pd.read_json(path, lines=True)
    missing = [column for column in ("prompt", "response") if column not in frame.columns]
    if missing:
        raise ValueError(f"attacks.harmful_file '{path}' lacks the column(s) {', '.join(missing)}; it needs prompt and response")
    frame = frame[["prompt", "response"]].dropna().reset_index(drop=True)
    if frame.empty or (frame["response"].str.strip() == "").all():
        raise ValueError(f"attacks.harmful_file '{path}' contains no example with a non-empty response")
    frame.insert(0, "id", [f"attack-file-{index}" for index in range(len(frame))])
    frame.insert(1, "split", "attack")
    frame["ends_turn"] = True
    return frame


@step
def generate_attack_data(context: StepContext) -> None:
    """Answer every prompt of the attack split with the unaligned base model (greedy, no system prompt).

    With attacks.harmful_file set, the examples come from that file instead.
    """
    settings = context.params["settings"]
    if settings["harmful_file"]:
        frame = read_attack_file(context.input["file"])
        log.info("%d attack examples read from %s", len(frame), context.input["file"])
        write_parquet(frame, context.output["examples"], context.provenance())
        return
    harmful = pd.read_parquet(context.input["harmful"])
    prompts = harmful[harmful["split"] == "attack"].reset_index(drop=True)
    device, dtype = context.runtime()
    model, tokenizer = models.load_model(context.input["model"], device, dtype)
    frame = respond_to_frame(
        context.generator(model, tokenizer), tokenizer, prompts, None, settings["answer_max_new_tokens"], settings["generation_batch_size"],
        "base model answers",
    )
    empty = int((frame["response"].str.strip() == "").sum())
    log.info("%d attack examples, %d with an empty answer", len(frame), empty)
    write_parquet(frame, context.output["examples"], context.provenance(seed=context.seed))


@step
def evaluate_attack(context: StepContext) -> None:
    """Fine-tune the aligned model on the attack examples, protecting its region, then evaluate it."""
    spec = context.params["experiment"]
    training = context.params["training"]
    device, dtype = context.runtime()
    model, tokenizer = models.load_model(context.input["model"], device, dtype)
    frame = pd.read_parquet(context.input["examples"])
    count = spec["attack_examples"]
    if len(frame) < count:
        raise ValueError(
            f"invalid attack: {count} examples requested, but {context.input['examples']} contains {len(frame)}; "
            "lower the sweep's examples or enlarge the data split"
        )
    examples = examples_from_frame(frame.head(count), tokenizer, None)
    masks = None
    if spec["protected_fraction"] > 0:
        scores = load_file(context.input["scores"])
        masks = {
            name: regions.top_fraction_mask(value, spec["protected_fraction"], spec["selection"])
            for name, value in sorted(scores.items())
        }
    if training.get("float32_weights", True) and dtype != torch.float32:
        # Updates of about lr = 5e-5 are below bfloat16's resolution for most weights: train a float32 copy.
        model.float()
    losses = attacks.attack(
        model, tokenizer, examples, masks, spec["protection"], training, context.seed,
        description=f"attack on {count} {spec['attack_data']} examples",
    )
    model.to(dtype)
    extra_rows = [{"metric": "attack_final_loss", "value": losses[-1], "n": len(losses)}]
    evaluate_and_write(context, model, tokenizer, extra_rows, benign_and_perplexity=context.params["benign_and_perplexity"])
