"""Steps that extract safety-critical regions from importance scores."""

from __future__ import annotations

import logging

from safetensors.torch import load_file

from safety_brittleness import regions
from safety_brittleness.steps import StepContext, step

log = logging.getLogger(__name__)


@step
def extract_set_difference(context: StepContext) -> None:
    spec = context.params["experiment"]
    safety = load_file(context.input["safety_scores"])
    utility = load_file(context.input["utility_scores"])
    masks = {
        name: regions.set_difference_mask(safety[name], utility[name], spec["p"], spec["q"], spec["selection"])
        for name in safety
    }
    selected = sum(int(mask.sum()) for mask in masks.values())
    total = sum(mask.numel() for mask in masks.values())
    log.info("set difference p=%s q=%s selects %d of %d weights (%.3f%%)", spec["p"], spec["q"], selected, total, 100 * selected / total)
    regions.save_masks(masks, context.output["region"], context.provenance())
