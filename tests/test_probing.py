"""Attention-head probing: features per head, probes, and removal of one head's slice."""

from __future__ import annotations

import numpy as np
import torch

from safety_brittleness.models import block_linear_layers
from safety_brittleness.probing import attention_output_projections, head_geometry, probe_heads, top_head_masks
from safety_brittleness.regions import apply_masks


def test_output_projection_found_by_structure(tiny_llama):
    projections = attention_output_projections(tiny_llama)
    assert list(projections) == ["model.layers.0.self_attn.o_proj", "model.layers.1.self_attn.o_proj"]
    assert head_geometry(tiny_llama) == (4, 8)


def test_probe_finds_the_separable_head():
    rng = np.random.default_rng(0)
    labels = np.array([1] * 40 + [0] * 40)
    features = torch.from_numpy(rng.normal(size=(80, 2, 3, 4))).float()
    features[:, 1, 2, 0] += torch.from_numpy(labels * 6.0).float()
    table = probe_heads(["a", "b"], features, labels, test_fraction=0.25, seed=0)
    assert len(table) == 6
    best = table.sort_values("accuracy", ascending=False).iloc[0]
    assert (best["block"], best["head"], best["layer"]) == (1, 2, "b")
    assert best["accuracy"] == 1.0
    assert table["accuracy"].drop(best.name).max() < 0.9
    assert set(table["n_test"]) == {20}


def test_pruning_one_head_zeroes_exactly_its_slice(tiny_llama):
    before = {name: layer.weight.clone() for name, layer in block_linear_layers(tiny_llama).items()}
    probes = [{"block": b, "head": h, "layer": f"model.layers.{b}.self_attn.o_proj", "accuracy": 0.5}
              for b in range(2) for h in range(4)]
    probes[6]["accuracy"] = 0.9   # block 1, head 2
    import pandas as pd

    masks = top_head_masks(tiny_llama, pd.DataFrame(probes), k=1)
    apply_masks(tiny_llama, masks)
    after = block_linear_layers(tiny_llama)
    projection = after["model.layers.1.self_attn.o_proj"].weight
    assert (projection[:, 16:24] == 0).all()
    assert torch.equal(projection[:, :16], before["model.layers.1.self_attn.o_proj"][:, :16])
    assert torch.equal(projection[:, 24:], before["model.layers.1.self_attn.o_proj"][:, 24:])
    for name, layer in after.items():
        if name != "model.layers.1.self_attn.o_proj":
            assert torch.equal(layer.weight, before[name])

    # Removing head 2 is the same as zeroing its 8 features at the projection's input.
    features = torch.randn(3, 32)
    silenced = features.clone()
    silenced[:, 16:24] = 0
    original = torch.nn.functional.linear(silenced, before["model.layers.1.self_attn.o_proj"])
    torch.testing.assert_close(after["model.layers.1.self_attn.o_proj"](features), original)
