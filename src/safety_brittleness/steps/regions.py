"""Steps that extract regions (masks of weights to remove), probe attention heads and measure overlap."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file

from safety_brittleness import models, probing, regions, scoring
from safety_brittleness.alignment import TrainingExample, examples_from_frame
from safety_brittleness.generation import chat_prompt
from safety_brittleness.provenance import write_parquet
from safety_brittleness.steps import StepContext, step

log = logging.getLogger(__name__)


def _calibration_examples(context: StepContext, tokenizer, name: str) -> list[TrainingExample]:
    frame = pd.read_parquet(context.input[f"calibration_{name}"])
    return examples_from_frame(frame, tokenizer, context.params["scoring"]["system_prompt"])


def _masks(context: StepContext, spec: dict) -> dict[str, torch.Tensor]:
    region = spec["region"]
    if region == "random_baseline":
        matched = regions.load_masks(context.input["matched_region"])
        generator = torch.Generator().manual_seed(int(spec["region_seed"]))
        return {name: regions.random_like_mask(mask, spec["selection"], generator) for name, mask in sorted(matched.items())}
    if region == "head_probing":
        device, dtype = context.runtime()
        model, _ = models.load_model(context.input["model"], device, dtype)
        return probing.top_head_masks(model, pd.read_parquet(context.input["probes"]), spec["top_k"])

    sources, select = regions.region_selector(spec)
    method = spec["score_method"]
    if method in ("magnitude", "random"):
        device, dtype = context.runtime()
        model, _ = models.load_model(context.input["model"], device, dtype)
        scores = scoring.magnitude_scores(model) if method == "magnitude" else scoring.random_scores(model, spec["region_seed"])
        return select({sources[0]: scores})
    if spec["mode"] == "sequential":
        device, dtype = context.runtime()
        model, tokenizer = models.load_model(context.input["model"], device, dtype)
        datasets = {name: _calibration_examples(context, tokenizer, name) for name in sources}
        return scoring.sequential_masks(model, tokenizer, datasets, method, context.params["scoring"]["max_length"], select)
    return select({name: load_file(context.input[f"scores_{name}"]) for name in sources})


@step
def extract_region(context: StepContext) -> None:
    spec = context.params["experiment"]
    masks = _masks(context, spec)
    selected = sum(int(mask.sum()) for mask in masks.values())
    total = sum(mask.numel() for mask in masks.values())
    log.info("%s selects %d of %d weights (%.3f%%)", context.wildcards["experiment"], selected, total, 100 * selected / max(total, 1))
    regions.save_masks(masks, context.output["region"], context.provenance(seed=spec.get("region_seed")))


@step
def probe_heads(context: StepContext) -> None:
    """Fit a probe per attention head on last-token head outputs of harmful vs harmless prompts."""
    settings = context.params["settings"]
    count = settings["samples_per_class"]
    harmful = pd.read_parquet(context.input["harmful"])
    harmful = harmful[harmful["split"] == "attribution"].sample(frac=1.0, random_state=context.seed).head(count)
    benign = pd.read_parquet(context.input["benign"])
    harmless = benign[benign["split"].isin(settings["harmless_splits"])].sample(frac=1.0, random_state=context.seed).head(count)
    if len(harmful) < count or len(harmless) < count:
        raise ValueError(
            f"regions.head_probing.samples_per_class = {count}, but only {len(harmful)} harmful and {len(harmless)} "
            "harmless prompts are available; lower it or add splits to harmless_splits"
        )
    device, dtype = context.runtime()
    model, tokenizer = models.load_model(context.input["model"], device, dtype)
    texts = list(harmful["prompt"]) + list(harmless["prompt"])
    prompts = [chat_prompt(tokenizer, text, context.params["scoring"]["system_prompt"]) for text in texts]
    layer_names, features = probing.head_features(model, tokenizer, prompts, settings["batch_size"])
    labels = np.array([1] * len(harmful) + [0] * len(harmless))
    table = probing.probe_heads(layer_names, features, labels, settings["test_fraction"], context.seed)
    log.info("probe accuracy over %d heads: median %.3f, max %.3f", len(table), table["accuracy"].median(), table["accuracy"].max())
    write_parquet(table, context.output["probes"], context.provenance(seed=context.seed))


@step
def compute_overlap(context: StepContext) -> None:
    """Jaccard index of the top safety and top utility weights per block and module."""
    settings = context.params["settings"]
    safety = load_file(context.input["safety_scores"])
    utility = load_file(context.input["utility_scores"])
    table = pd.DataFrame(regions.overlap_table(safety, utility, settings["fraction"], settings["selection"]))
    for key in ("score_method", "fraction", "selection", "safety_dataset", "utility_dataset"):
        table[key] = settings[key]
    log.info("Jaccard index: mean %.3f over %d layers", table["jaccard"].mean(), len(table))
    write_parquet(table, context.output["overlaps"], context.provenance())
