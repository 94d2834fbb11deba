"""Safety-critical regions as boolean masks over block linear weights: selection, storage, removal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors import safe_open

from safety_brittleness.models import block_linear_layers
from safety_brittleness.provenance import write_safetensors

SELECTIONS = ("row", "matrix")


def fraction_mask(scores: torch.Tensor, fraction: float, selection: str, largest: bool = True) -> torch.Tensor:
    """Mark the `fraction` highest (or lowest) scores: within each row ('row') or over the whole matrix ('matrix').

    The count is floor(fraction * row length) per row, or floor(fraction * size) per matrix.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection '{selection}'; allowed: {', '.join(SELECTIONS)}")
    mask = torch.zeros_like(scores, dtype=torch.bool)
    if selection == "row":
        count = int(scores.shape[1] * fraction)
        if count > 0:
            indices = torch.topk(scores, count, dim=1, largest=largest).indices
            mask.scatter_(1, indices, True)
    else:
        count = int(scores.numel() * fraction)
        if count > 0:
            indices = torch.topk(scores.flatten(), count, largest=largest).indices
            mask.view(-1)[indices] = True
    return mask


def top_fraction_mask(scores: torch.Tensor, fraction: float, selection: str) -> torch.Tensor:
    """Mark the `fraction` highest scores (see fraction_mask)."""
    return fraction_mask(scores, fraction, selection, largest=True)


def set_difference_mask(
    safety: torch.Tensor, utility: torch.Tensor, p: float, q: float, selection: str
) -> torch.Tensor:
    """Return S_safety(q) minus S_utility(p): top-q safety weights that are not top-p utility weights."""
    return top_fraction_mask(safety, q, selection) & ~top_fraction_mask(utility, p, selection)


def random_like_mask(mask: torch.Tensor, selection: str, generator: torch.Generator) -> torch.Tensor:
    """Return a random mask of the same size as `mask`: the same count in every row ('row') or in the matrix.

    This is the random baseline of a region: it removes as many weights, placed uniformly at random.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection '{selection}'; allowed: {', '.join(SELECTIONS)}")
    if selection == "matrix":
        flat = torch.zeros(mask.numel(), dtype=torch.bool)
        flat[torch.randperm(mask.numel(), generator=generator)[: int(mask.sum())]] = True
        return flat.reshape(mask.shape)
    # Rank the columns of each row in a random order and keep the first `count` of that row.
    ranks = torch.rand(mask.shape, generator=generator).argsort(dim=1).argsort(dim=1)
    return ranks < mask.sum(dim=1, keepdim=True)


def head_column_mask(weight_shape: tuple[int, int], heads: list[int], head_dim: int) -> torch.Tensor:
    """Mask the input columns of an attention output projection that carry the given heads.

    The input of the output projection is the concatenation of the heads' outputs, with head h in
    columns h * head_dim to (h + 1) * head_dim. Zeroing those columns removes head h.
    """
    mask = torch.zeros(weight_shape, dtype=torch.bool)
    for head in heads:
        start = head * head_dim
        if start + head_dim > weight_shape[1]:
            raise ValueError(f"head {head} with head_dim {head_dim} is outside a weight with {weight_shape[1]} input columns")
        mask[:, start:start + head_dim] = True
    return mask


def save_masks(masks: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, Any]) -> None:
    """Store boolean masks bit-packed (8 weights a byte) in safetensors, shapes in the metadata."""
    packed = {}
    shapes = {}
    for name, mask in masks.items():
        packed[name] = torch.from_numpy(np.packbits(mask.cpu().numpy().ravel()))
        shapes[name] = list(mask.shape)
    header = {"format": "packbits", "shapes": json.dumps(shapes), "provenance": json.dumps(metadata, default=str)}
    write_safetensors(packed, path, header)


def load_masks(path: str | Path) -> dict[str, torch.Tensor]:
    masks = {}
    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata() or {}
        if header.get("format") != "packbits":
            raise ValueError(f"'{path}' is not a mask file written by save_masks; rerun its region rule")
        shapes = json.loads(header["shapes"])
        for name in handle.keys():
            shape = shapes[name]
            count = int(np.prod(shape))
            bits = np.unpackbits(handle.get_tensor(name).numpy())[:count]
            masks[name] = torch.from_numpy(bits.astype(bool)).reshape(shape)
    return masks


@torch.no_grad()
def apply_masks(model, masks: dict[str, torch.Tensor]) -> None:
    """Zero the masked weights of `model` in place."""
    layers = block_linear_layers(model)
    unknown = set(masks) - set(layers)
    if unknown:
        raise ValueError(f"mask names not in the model: {sorted(unknown)[:3]}; was the region computed for another model?")
    for name, mask in masks.items():
        weight = layers[name].weight
        if weight.shape != mask.shape:
            raise ValueError(f"mask '{name}' has shape {tuple(mask.shape)} but the weight has {tuple(weight.shape)}")
        weight.masked_fill_(mask.to(weight.device), 0.0)


@torch.no_grad()
def actual_sparsity(model) -> float:
    """Fraction of exactly zero weights among all block linear weights."""
    zeros = 0
    total = 0
    for layer in block_linear_layers(model).values():
        zeros += int((layer.weight == 0).sum())
        total += layer.weight.numel()
    return zeros / total


def jaccard_index(first: torch.Tensor, second: torch.Tensor) -> float:
    """Return |A intersect B| / |A union B| of two boolean masks; 0 when both are empty."""
    union = int((first | second).sum())
    if union == 0:
        return 0.0
    return int((first & second).sum()) / union


def region_selector(spec: dict[str, Any]) -> tuple[list[str], Callable[[dict[str, dict[str, torch.Tensor]]], dict[str, torch.Tensor]]]:
    """Return the score sets a region is selected from and the function that selects it.

    The function maps {score set name: {layer name: scores}} to {layer name: mask}; it serves the
    one-shot path (scores of the unedited model) and the sequential path (one block at a time).
    Top and bottom regions need one score set, named by the experiment's safety data set (or by
    the score method for data-free scores). The set difference needs the safety and utility sets.
    """
    region = spec["region"]
    selection = spec["selection"]
    if region in ("top", "bottom"):
        source = spec["safety_dataset"] or spec["score_method"]
        largest = region == "top"

        def select(scores):
            return {name: fraction_mask(value, spec["sparsity"], selection, largest) for name, value in scores[source].items()}

        return [source], select
    if region == "set_difference":
        safety_set, utility_set = spec["safety_dataset"], spec["utility_dataset"]

        def select(scores):
            return {
                name: set_difference_mask(value, scores[utility_set][name], spec["p"], spec["q"], selection)
                for name, value in scores[safety_set].items()
            }

        return [safety_set, utility_set], select
    raise ValueError(f"region '{region}' is not selected from scores")


def overlap_table(safety: dict[str, torch.Tensor], utility: dict[str, torch.Tensor], fraction: float, selection: str) -> list[dict[str, Any]]:
    """Jaccard index of the top-`fraction` safety and utility weights, one row per block and module.

    Layer names such as 'model.layers.3.self_attn.q_proj' give block 3 and module 'q_proj'.
    """
    rows = []
    for name, scores in safety.items():
        parts = name.split(".")
        position = next(i for i, part in enumerate(parts) if part.isdigit())
        first = top_fraction_mask(scores, fraction, selection)
        second = top_fraction_mask(utility[name], fraction, selection)
        rows.append({
            "layer": name,
            "block": int(parts[position]),
            "module": parts[-1],
            "jaccard": jaccard_index(first, second),
            "selected": int(first.sum()),
        })
    return rows
