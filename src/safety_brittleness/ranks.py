"""Rank-level regions (ActSVD): output bases of block linear layers from input Gram matrices.

For a layer with weight W (d_out x d_in) and calibration inputs X (tokens x d_in), ActSVD takes the
top left singular vectors U of the output activations W X^T. They are the eigenvectors of
W (X^T X) W^T, so the d_in x d_in Gram matrix X^T X, summed over the response tokens of the
calibration set, replaces the stored activations: memory no longer grows with the number of tokens.
"""

from __future__ import annotations

import logging

import torch
from safety_brittleness.activations import for_each_response_input
from safety_brittleness.alignment import TrainingExample, tokenize_example
from safety_brittleness.models import block_linear_layers

log = logging.getLogger(__name__)


@torch.no_grad()
def shared_inputs(model, tokenizer, example: TrainingExample, max_length: int) -> dict[str, str]:
    """Map every block linear layer to the first layer that reads the very same input tensor.

    In a Llama block the q, k and v projections read one tensor, and so do the gate and up
    projections: their Gram matrices are equal, so only the first of each group is computed.
    """
    layers = block_linear_layers(model)
    device = next(model.parameters()).device
    # The tensors themselves are kept, so no freed tensor's memory is reused by a later input.
    seen: dict[str, torch.Tensor] = {}

    def record(name: str):
        def hook(module, inputs, output):
            seen[name] = inputs[0]
        return hook

    handles = [layer.register_forward_hook(record(name)) for name, layer in layers.items()]
    try:
        input_ids, _ = tokenize_example(tokenizer, example, max_length)
        model(input_ids=torch.tensor([input_ids], device=device))
    finally:
        for handle in handles:
            handle.remove()
    groups: dict[str, str] = {}
    for name in layers:
        groups[name] = next((other for other in groups if seen[other] is seen[name] and groups[other] == other), name)
    return groups


@torch.no_grad()
def input_grams(model, tokenizer, examples: list[TrainingExample], max_length: int) -> dict[str, torch.Tensor]:
    """Return X^T X (float64) of the block linear layers' inputs over the response tokens of `examples`.

    Positions are those whose label is not masked, as for Wanda scores. Layers that read the same
    input share one matrix object (see shared_inputs), so it is computed and stored once.
    """
    layers = block_linear_layers(model)
    groups = shared_inputs(model, tokenizer, examples[0], max_length) if examples else {name: name for name in layers}
    owners = {name: layer for name, layer in layers.items() if groups[name] == name}
    grams = {
        name: torch.zeros(layer.in_features, layer.in_features, dtype=torch.float64, device=layer.weight.device)
        for name, layer in owners.items()
    }

    def accumulate(name: str, features: torch.Tensor) -> None:
        features = features.double()
        grams[name] += features.T @ features

    for_each_response_input(model, tokenizer, examples, max_length, owners, accumulate, "ActSVD Gram")
    return {name: grams[groups[name]] for name in layers}


def save_grams(grams: dict[str, torch.Tensor], path, metadata: dict) -> None:
    """Store each distinct Gram matrix once (float64), with the layer-to-matrix map in the header."""
    import json

    from safetensors.torch import save_file

    from safety_brittleness.provenance import atomic_path

    owners: dict[int, str] = {}
    mapping = {name: owners.setdefault(id(gram), name) for name, gram in grams.items()}
    tensors = {name: grams[name].contiguous() for name in set(mapping.values())}
    header = {"layers": json.dumps(mapping), "provenance": json.dumps(metadata, default=str)}
    with atomic_path(path, suffix=".safetensors") as temporary:
        save_file(tensors, str(temporary), metadata=header)


def load_grams(path) -> dict[str, torch.Tensor]:
    """Return {layer name: Gram matrix} from a file written by save_grams."""
    import json

    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata() or {}
        if "layers" not in header:
            raise ValueError(f"'{path}' is not a Gram file written by save_grams; rerun its rule")
        mapping = json.loads(header["layers"])
        stored = {name: handle.get_tensor(name) for name in handle.keys()}
    return {name: stored[owner] for name, owner in mapping.items()}


def output_basis(weight: torch.Tensor, gram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the singular values and left singular vectors of W X^T, from W and X^T X.

    The columns of U (d_out x R, R = min(d_out, d_in)) are sorted by decreasing singular value.
    """
    weight = weight.double()
    product = weight @ gram.to(weight.device) @ weight.T
    eigenvalues, eigenvectors = torch.linalg.eigh((product + product.T) / 2)
    order = torch.argsort(eigenvalues, descending=True)[: min(weight.shape)]
    return eigenvalues[order].clamp_min(0).sqrt(), eigenvectors[:, order]


def remove_top_ranks(weight: torch.Tensor, basis: torch.Tensor, rank: int) -> torch.Tensor:
    """Return W - U_r U_r^T W: the weight without its top-r output directions."""
    top = basis[:, :rank].to(weight.dtype)
    return weight - top @ (top.T @ weight)


def keep_top_ranks(weight: torch.Tensor, basis: torch.Tensor, rank: int) -> torch.Tensor:
    """Return U_k U_k^T W: the weight restricted to its top-k output directions."""
    top = basis[:, :rank].to(weight.dtype)
    return top @ (top.T @ weight)


def orthogonal_projection_delta(
    weight: torch.Tensor, utility_basis: torch.Tensor, safety_basis: torch.Tensor, r_u: int, r_s: int,
) -> torch.Tensor:
    """Return dW = (I - P_u) P_s W, the part of W that is safety-critical but not utility-critical.

    P_u projects on the top R - r_u utility directions and P_s on the top R - r_s safety
    directions, with R = min(d_out, d_in). The edited weight is W - dW, and
    rank(dW) <= min(d_out - R + r_u, R - r_s), which is min(r_u, R - r_s) when d_out <= d_in.
    """
    full = min(weight.shape)
    utility = utility_basis[:, : full - r_u].to(weight.dtype)
    safety = safety_basis[:, : full - r_s].to(weight.dtype)
    projected = safety @ (safety.T @ weight)
    return projected - utility @ (utility.T @ projected)


def subspace_similarity(first: torch.Tensor, second: torch.Tensor, rank: int) -> float:
    """Return ||U_1^T U_2||_F^2 / rank for the top-`rank` columns of two orthonormal bases (1: same subspace)."""
    overlap = first[:, :rank].T @ second[:, :rank]
    return float(overlap.pow(2).sum() / rank)


def scaled_rank(full_rank: int, fraction: float) -> int:
    """Return round(fraction * R), at least 1: a rank given as a share of the layer's full rank R."""
    return max(1, round(fraction * full_rank))


def subspace_table(
    model, safety: dict[str, torch.Tensor], utility: dict[str, torch.Tensor], rank_fraction: float,
) -> list[dict]:
    """Return the subspace similarity of the top safety and top utility output directions, one row per layer.

    The rank compared in a layer is scaled_rank(R, rank_fraction): 100 of Llama-2-7B's 4096 is a
    fraction of 0.0244, which gives 14 of 576 on the embedded model.
    """
    rows = []
    for name, layer in block_linear_layers(model).items():
        weight = layer.weight.detach()
        _, safety_basis = output_basis(weight, safety[name])
        _, utility_basis = output_basis(weight, utility[name])
        rank = scaled_rank(min(weight.shape), rank_fraction)
        parts = name.split(".")
        position = next(i for i, part in enumerate(parts) if part.isdigit())
        rows.append({
            "layer": name, "block": int(parts[position]), "module": parts[-1], "rank": rank,
            "full_rank": min(weight.shape), "similarity": subspace_similarity(utility_basis, safety_basis, rank),
        })
    return rows
