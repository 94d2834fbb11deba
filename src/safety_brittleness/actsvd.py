"""ActSVD calibration: input Gram matrices of block linear layers, one-shot or block by block.

The Gram matrix X^T X of a layer's inputs over the response tokens of a calibration set is all that
the output bases of safety_brittleness.ranks need. Sequential mode recomputes each block's Gram
matrices on the model whose earlier blocks are already edited.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import torch
from tqdm.auto import tqdm

from safety_brittleness.activations import for_each_response_input
from safety_brittleness.alignment import TrainingExample, tokenize_example
from safety_brittleness.models import block_linear_layers, decoder_blocks
from safety_brittleness.ranks import edit_weight, output_basis
from safety_brittleness.scoring import BlockInputs

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


def _upper_indices(size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the row and column indices of the upper triangle (diagonal included) of a size x size matrix."""
    return tuple(torch.triu_indices(size, size, device=device))


class Grams(Mapping):
    """X^T X of every block linear layer, kept once per distinct input as its packed upper triangle.

    A Gram matrix is symmetric, so its upper triangle (float64, row-major) contains all of it in about
    half the memory and disk space. Indexing by layer name returns the full matrix, unpacked anew on
    each access. `owners` maps every layer to the layer whose input it shares (see shared_inputs).
    """

    def __init__(self, packed: dict[str, torch.Tensor], sizes: dict[str, int], owners: dict[str, str]):
        self.packed = packed
        self.sizes = sizes
        self.owners = owners

    def __getitem__(self, name: str) -> torch.Tensor:
        owner = self.owners[name]
        size = self.sizes[owner]
        values = self.packed[owner]
        rows, columns = _upper_indices(size, values.device)
        matrix = torch.zeros(size, size, dtype=values.dtype, device=values.device)
        matrix[rows, columns] = values
        matrix[columns, rows] = values
        return matrix

    def __iter__(self):
        return iter(self.owners)

    def __len__(self) -> int:
        return len(self.owners)

    def nbytes(self) -> int:
        """Return the size in bytes of the packed triangles."""
        return sum(values.numel() * values.element_size() for values in self.packed.values())


@torch.no_grad()
def input_grams(model, tokenizer, examples: list[TrainingExample], max_length: int) -> Grams:
    """Return X^T X (float64) of the block linear layers' inputs over the response tokens of `examples`.

    Positions are those whose label is not masked, as for Wanda scores. Layers that read the same
    input share one matrix (see shared_inputs), so it is computed and stored once, packed.
    """
    layers = block_linear_layers(model)
    groups = shared_inputs(model, tokenizer, examples[0], max_length) if examples else {name: name for name in layers}
    owners = {name: layer for name, layer in layers.items() if groups[name] == name}
    sizes = {name: layer.in_features for name, layer in owners.items()}
    packed = {
        name: torch.zeros(size * (size + 1) // 2, dtype=torch.float64, device=owners[name].weight.device)
        for name, size in sizes.items()
    }

    # One product buffer and one packed buffer per matrix size, reused by every hook call instead of
    # allocating d x d temporaries on each call.
    device = next(model.parameters()).device
    scratch = {}
    for size in set(sizes.values()):
        rows, columns = _upper_indices(size, device)
        full = torch.empty(size, size, dtype=torch.float64, device=device)
        scratch[size] = (rows * size + columns, full, torch.empty(len(rows), dtype=torch.float64, device=device))
    tokens = {"count": 0}
    first = next(iter(owners), None)

    def accumulate(name: str, features: torch.Tensor) -> None:
        if name == first:
            tokens["count"] += features.shape[0]
        features = features.double()
        flat, full, upper = scratch[sizes[name]]
        torch.mm(features.T, features, out=full)
        torch.take(full, flat, out=upper)
        packed[name] += upper

    for_each_response_input(model, tokenizer, examples, max_length, owners, accumulate, "ActSVD Gram")
    if tokens["count"] == 0:
        raise ValueError(
            f"the {len(examples)} calibration examples hold no response tokens within max_length {max_length}, "
            "so every Gram matrix would be zero; check that the calibration responses are not empty"
        )
    log.info("Gram matrices over %d response tokens of %d examples", tokens["count"], len(examples))
    return Grams(packed, sizes, dict(groups))


# Stored in the header of a Gram file: how each tensor stores its matrix.
PACKING = "upper-triangle-row-major"


def save_grams(grams: Grams, path, metadata: dict) -> None:
    """Store each distinct Gram matrix once as its packed upper triangle, with the layer map in the header."""
    from safety_brittleness.provenance import write_safetensors

    header = {
        "layers": json.dumps(grams.owners), "sizes": json.dumps(grams.sizes), "packing": PACKING,
        "provenance": json.dumps(metadata, default=str),
    }
    write_safetensors({name: values.contiguous() for name, values in grams.packed.items()}, path, header)


def load_grams(path) -> Grams:
    """Return the Grams of a file written by save_grams."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata() or {}
        if header.get("packing") != PACKING or "layers" not in header:
            raise ValueError(
                f"'{path}' is not a Gram file of this version (packing {header.get('packing')!r}, expected "
                f"{PACKING!r}); delete it and rerun compute_grams"
            )
        packed = {name: handle.get_tensor(name) for name in handle.keys()}
    return Grams(packed, json.loads(header["sizes"]), json.loads(header["layers"]))


def _block_grams(inputs: BlockInputs, block, layers: dict[str, torch.nn.Linear]) -> dict[str, torch.Tensor]:
    """Return X^T X of `layers` (inside `block`) over the response tokens of the carried block inputs."""
    grams = {name: torch.zeros(layer.in_features, layer.in_features, dtype=torch.float64, device=layer.weight.device)
             for name, layer in layers.items()}

    def accumulate(name: str, features: torch.Tensor) -> None:
        features = features.double()
        grams[name] += features.T @ features

    inputs.for_each_response_input(block, layers, accumulate)
    return grams


@torch.no_grad()
def sequential_bases(
    model, tokenizer, datasets: dict[str, list[TrainingExample]], max_length: int, spec: dict,
) -> dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Compute output bases and apply the rank edit block by block; return {role: {layer: (values, basis)}}.

    `datasets` maps a role (safety, and utility for orthogonal projection) to its calibration
    examples. Block i's bases come from the inputs of the model whose blocks 0..i-1 are already
    edited. Block i is then edited with them (ranks.edit_weight), and the carried hidden states
    pass through the edited block. The model is left edited.
    """
    prefix, blocks = decoder_blocks(model)
    layers = block_linear_layers(model)
    carried = {role: BlockInputs.capture(model, tokenizer, examples, max_length) for role, examples in datasets.items()}
    bases: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {role: {} for role in datasets}
    for index, block in enumerate(tqdm(blocks, desc="sequential ActSVD", unit="block", mininterval=2.0)):
        block_layers = {name: layer for name, layer in layers.items() if name.startswith(f"{prefix}.{index}.")}
        for role, inputs in carried.items():
            grams = _block_grams(inputs, block, block_layers)
            for name, layer in block_layers.items():
                bases[role][name] = output_basis(layer.weight.detach(), grams[name])
        # The bases are rounded to float32 as save_bases stores them, so the evaluation rebuilds this exact edit.
        for name, layer in block_layers.items():
            safety = bases["safety"][name][1].float()
            utility = bases["utility"][name][1].float() if "utility" in bases else None
            edited, _ = edit_weight(layer.weight.data, spec, safety, utility)
            layer.weight.data.copy_(edited.to(layer.weight.dtype))
        for inputs in carried.values():
            inputs.advance(block)
    return bases
