"""Safety-critical regions as boolean masks over block linear weights: selection, storage, removal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from safety_brittleness.models import block_linear_layers
from safety_brittleness.provenance import atomic_path

SELECTIONS = ("row", "matrix")


def top_fraction_mask(scores: torch.Tensor, fraction: float, selection: str) -> torch.Tensor:
    """Mark the `fraction` highest scores: within each row ('row') or over the whole matrix ('matrix').

    The count is floor(fraction * row length) per row, or floor(fraction * size) per matrix.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection '{selection}'; allowed: {', '.join(SELECTIONS)}")
    mask = torch.zeros_like(scores, dtype=torch.bool)
    if selection == "row":
        count = int(scores.shape[1] * fraction)
        if count > 0:
            indices = torch.topk(scores, count, dim=1).indices
            mask.scatter_(1, indices, True)
    else:
        count = int(scores.numel() * fraction)
        if count > 0:
            indices = torch.topk(scores.flatten(), count).indices
            mask.view(-1)[indices] = True
    return mask


def set_difference_mask(
    safety: torch.Tensor, utility: torch.Tensor, p: float, q: float, selection: str
) -> torch.Tensor:
    """Return S_safety(q) minus S_utility(p): top-q safety weights that are not top-p utility weights."""
    return top_fraction_mask(safety, q, selection) & ~top_fraction_mask(utility, p, selection)


def save_masks(masks: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, Any]) -> None:
    """Store boolean masks bit-packed (8 weights a byte) in safetensors, shapes in the metadata."""
    packed = {}
    shapes = {}
    for name, mask in masks.items():
        packed[name] = torch.from_numpy(np.packbits(mask.cpu().numpy().ravel()))
        shapes[name] = list(mask.shape)
    header = {"format": "packbits", "shapes": json.dumps(shapes), "provenance": json.dumps(metadata, default=str)}
    with atomic_path(path, suffix=".safetensors") as temporary:
        save_file(packed, str(temporary), metadata=header)


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
