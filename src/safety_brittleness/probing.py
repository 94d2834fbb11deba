"""Attention-head probing: a linear probe per head that separates harmful from harmless prompts.

The feature of a head is its output at the last prompt token, read at the input of the attention
output projection (where the heads' outputs are concatenated). Pruning the heads whose probes are
most accurate is the probing baseline of the study.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from tqdm.auto import tqdm

from safety_brittleness.models import decoder_blocks
from safety_brittleness.regions import head_column_mask

log = logging.getLogger(__name__)


def head_geometry(model) -> tuple[int, int]:
    """Return (number of attention heads, head dimension) from the model config."""
    config = model.config
    heads = int(config.num_attention_heads)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return heads, int(head_dim)


def attention_output_projections(model) -> dict[str, nn.Linear]:
    """Return each block's attention output projection, keyed by module name.

    In every block, the attention module is the child whose name or class mentions attention. Its
    output projection is the last nn.Linear registered in it whose input width is heads x head_dim.
    """
    prefix, blocks = decoder_blocks(model)
    heads, head_dim = head_geometry(model)
    found: dict[str, nn.Linear] = {}
    for index, block in enumerate(blocks):
        attention = [
            (name, child) for name, child in block.named_children()
            if "attn" in name.lower() or "attention" in type(child).__name__.lower()
        ]
        if not attention:
            raise ValueError(f"block {index} has no attention module; cannot locate attention heads")
        attention_name, module = attention[0]
        candidates = [
            (name, layer) for name, layer in module.named_modules()
            if isinstance(layer, nn.Linear) and layer.in_features == heads * head_dim
        ]
        if not candidates:
            raise ValueError(f"block {index}: no linear layer with {heads * head_dim} inputs in '{attention_name}'")
        name, layer = candidates[-1]
        found[f"{prefix}.{index}.{attention_name}.{name}"] = layer
    return found


@torch.no_grad()
def head_features(model, tokenizer, prompts: list[str], batch_size: int) -> tuple[list[str], torch.Tensor]:
    """Return the projection names and a (prompts, blocks, heads, head_dim) tensor of last-token head outputs."""
    projections = attention_output_projections(model)
    heads, head_dim = head_geometry(model)
    device = next(model.parameters()).device
    captured: dict[str, torch.Tensor] = {}

    def record(name: str):
        def hook(module, args):
            captured[name] = args[0][:, -1, :].float().cpu()
        return hook

    handles = [layer.register_forward_pre_hook(record(name)) for name, layer in projections.items()]
    tokenizer.padding_side = "left"
    batches = []
    try:
        for start in tqdm(range(0, len(prompts), batch_size), desc="head outputs", unit="batch", mininterval=2.0):
            encoded = tokenizer(
                prompts[start:start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(device)
            model(**encoded, use_cache=False)
            batches.append(torch.stack([captured[name] for name in projections], dim=1))
    finally:
        for handle in handles:
            handle.remove()
    features = torch.cat(batches).reshape(len(prompts), len(projections), heads, head_dim)
    return list(projections), features


def probe_heads(
    layer_names: list[str], features: torch.Tensor, labels: np.ndarray, test_fraction: float, seed: int,
) -> pd.DataFrame:
    """Fit a logistic-regression probe per head; return one row per head with its held-out accuracy."""
    indices = np.arange(len(labels))
    train, test = train_test_split(indices, test_size=test_fraction, random_state=seed, stratify=labels)
    rows = []
    blocks, heads = features.shape[1], features.shape[2]
    for block in tqdm(range(blocks), desc="probes", unit="block", mininterval=2.0):
        for head in range(heads):
            values = features[:, block, head, :].numpy()
            probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
            probe.fit(values[train], labels[train])
            rows.append({
                "block": block,
                "head": head,
                "layer": layer_names[block],
                "accuracy": float(probe.score(values[test], labels[test])),
                "train_accuracy": float(probe.score(values[train], labels[train])),
                "n_train": len(train),
                "n_test": len(test),
            })
    return pd.DataFrame(rows)


def top_head_masks(model, probes: pd.DataFrame, k: int) -> dict[str, torch.Tensor]:
    """Masks that zero the k heads with the most accurate probes (ties: earlier block, then head)."""
    if k > len(probes):
        raise ValueError(f"top_k = {k} exceeds the {len(probes)} probed heads")
    _, head_dim = head_geometry(model)
    projections = attention_output_projections(model)
    chosen = probes.sort_values(["accuracy", "block", "head"], ascending=[False, True, True]).head(k)
    masks = {}
    for name, layer in projections.items():
        heads = chosen.loc[chosen["layer"] == name, "head"].astype(int).tolist()
        masks[name] = head_column_mask(tuple(layer.weight.shape), heads, head_dim)
    return masks
