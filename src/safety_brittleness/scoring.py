"""Importance scores of block linear weights on a calibration set: SNIP and Wanda."""

from __future__ import annotations

import logging

import torch
from tqdm.auto import tqdm

from safety_brittleness.alignment import TrainingExample, tokenize_example
from safety_brittleness.models import block_linear_layers

log = logging.getLogger(__name__)


def snip_scores(model, tokenizer, examples: list[TrainingExample], max_length: int) -> dict[str, torch.Tensor]:
    """Return SNIP scores |W| * sum_i |dL_i/dW| for every block linear weight.

    L_i is the mean next-token loss over the response tokens of sample i. Each sample gets its own
    backward pass, which yields the gradients of all layers at once; the absolute value is taken
    per sample before summing.
    """
    layers = block_linear_layers(model)
    weights = [layer.weight for layer in layers.values()]
    device = weights[0].device
    model.eval()
    model.requires_grad_(False)
    for weight in weights:
        weight.requires_grad_(True)
    totals = [torch.zeros_like(weight, dtype=torch.float32) for weight in weights]

    for example in tqdm(examples, desc="SNIP", unit="sample", mininterval=2.0):
        input_ids, labels = tokenize_example(tokenizer, example, max_length)
        if all(label == -100 for label in labels[1:]):
            continue
        loss = model(
            input_ids=torch.tensor([input_ids], device=device),
            labels=torch.tensor([labels], device=device),
        ).loss
        gradients = torch.autograd.grad(loss, weights)
        for total, gradient in zip(totals, gradients):
            total.add_(gradient.abs().float())

    for weight in weights:
        weight.requires_grad_(False)
    return {name: total * weight.detach().abs().float() for name, total, weight in zip(layers, totals, weights)}


@torch.no_grad()
def wanda_scores(model, tokenizer, examples: list[TrainingExample], max_length: int) -> dict[str, torch.Tensor]:
    """Return Wanda scores |W| * ||X_j||_2 for every block linear weight.

    ||X_j|| is the L2 norm of input feature j over the response tokens of all calibration samples
    (positions whose label is not masked), broadcast over the rows of W. One forward pass per
    sample collects the inputs of all layers through forward hooks.
    """
    layers = block_linear_layers(model)
    device = next(model.parameters()).device
    squares = {name: torch.zeros(layer.in_features, dtype=torch.float64, device=device) for name, layer in layers.items()}
    selected: dict[str, torch.Tensor] = {}

    def accumulate(name: str):
        def hook(module, inputs, output):
            features = inputs[0][0][selected["positions"]]
            squares[name] += features.double().pow(2).sum(dim=0)
        return hook

    handles = [layer.register_forward_hook(accumulate(name)) for name, layer in layers.items()]
    try:
        for example in tqdm(examples, desc="Wanda", unit="sample", mininterval=2.0):
            input_ids, labels = tokenize_example(tokenizer, example, max_length)
            selected["positions"] = torch.tensor([label != -100 for label in labels], device=device)
            if not bool(selected["positions"].any()):
                continue
            model(input_ids=torch.tensor([input_ids], device=device))
    finally:
        for handle in handles:
            handle.remove()
    return {
        name: layer.weight.detach().abs().float() * squares[name].sqrt().float().unsqueeze(0)
        for name, layer in layers.items()
    }
