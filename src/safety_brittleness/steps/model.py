"""Steps that build the base model and align it."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pandas as pd

from safety_brittleness import alignment, data, models
from safety_brittleness.generation import respond_to_frame
from safety_brittleness.provenance import atomic_directory, write_json, write_parquet
from safety_brittleness.steps import StepContext, step

log = logging.getLogger(__name__)


@step
def prepare_base_model(context: StepContext) -> None:
    runtime = context.params["runtime"]
    models.prepare_base_model(context.params["source"], context.output["model"], runtime["dtype"], context.seed, context.rule)


@step
def generate_alignment_targets(context: StepContext) -> None:
    """Record the base model's own greedy answers to the benign alignment prompts."""
    settings = context.params["settings"]
    device, dtype = context.runtime()
    model, tokenizer = models.load_model(context.input["model"], device, dtype)
    benign = pd.read_parquet(context.input["benign"])
    benign = benign[benign["split"] == "alignment"].reset_index(drop=True)
    benign = respond_to_frame(
        context.generator(model, tokenizer), tokenizer, benign, None, settings["target_max_new_tokens"], settings["generation_batch_size"],
        description="base model responses",
    )
    write_parquet(benign, context.output["targets"], context.provenance(seed=context.seed))


def _link_aligned(base: str, output: str, record: dict) -> None:
    """Use an already aligned base model as the aligned model: hard links to its files, or copies."""
    source = Path(base)
    with atomic_directory(output) as temporary:
        for path in sorted(source.iterdir()):
            if path.is_file() and path.name != models.PROVENANCE_FILE:
                try:
                    os.link(path, temporary / path.name)
                except OSError:
                    shutil.copy2(path, temporary / path.name)
        write_json(record, temporary / models.PROVENANCE_FILE)


@step
def align_model(context: StepContext) -> None:
    """Align the base model by SFT, or with alignment.enabled false take the base model as aligned."""
    settings = context.params["settings"]
    if not settings["enabled"]:
        log.info("alignment disabled: %s is used as the aligned model", context.input["model"])
        _link_aligned(context.input["model"], context.output["model"], context.provenance(seed=context.seed))
        return
    device, dtype = context.runtime()
    model, tokenizer = models.load_model(context.input["model"], device, dtype)
    harmful = pd.read_parquet(context.input["harmful"])
    attribution = harmful[harmful["split"] == "attribution"]
    count = min(settings["harmful_examples"], len(attribution))
    harmful_prompts = attribution["prompt"].sample(n=count, random_state=context.seed).tolist()
    targets = pd.read_parquet(context.input["targets"]).head(settings["benign_examples"])
    examples = alignment.build_alignment_examples(
        tokenizer, harmful_prompts, data.load_refusal_templates(),
        targets["prompt"].tolist(), targets["response"].tolist(), targets["ends_turn"].tolist(),
        context.params["safety_system_prompt"], settings["system_prompt_fraction"], context.seed,
    )
    log.info("alignment data: %d harmful, %d benign examples", len(harmful_prompts), len(targets))

    losses = alignment.fine_tune(
        model, tokenizer, examples, settings["learning_rate"], settings["epochs"], settings["batch_size"],
        settings["max_length"], settings["warmup_fraction"], settings["weight_decay"], settings["max_grad_norm"],
        context.seed, description="alignment SFT",
    )

    record = context.provenance(seed=context.seed, losses=losses)
    with atomic_directory(context.output["model"]) as temporary:
        model.save_pretrained(temporary, safe_serialization=True)
        tokenizer.save_pretrained(temporary)
        write_json(record, temporary / models.PROVENANCE_FILE)
