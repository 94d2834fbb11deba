"""A forward pass over a calibration set that hands each layer's response-token inputs to a callback."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from safety_brittleness.alignment import TrainingExample, tokenize_example


@torch.no_grad()
def for_each_response_input(
    model,
    tokenizer,
    examples: list[TrainingExample],
    max_length: int,
    layers: dict[str, nn.Linear],
    consume: Callable[[str, torch.Tensor], None],
    description: str,
) -> None:
    """Run each example once and call consume(layer name, inputs) for every layer in `layers`.

    `inputs` contains the layer's input features at the response-token positions of one example
    (positions whose label is not masked), one row per token. Examples without response tokens
    are skipped.
    """
    device = next(model.parameters()).device
    selected: dict[str, torch.Tensor] = {}

    def forward_hook(name: str):
        def hook(module, inputs, output):
            consume(name, inputs[0][0][selected["positions"]])
        return hook

    handles = [layer.register_forward_hook(forward_hook(name)) for name, layer in layers.items()]
    try:
        for example in tqdm(examples, desc=description, unit="sample", mininterval=2.0):
            input_ids, labels = tokenize_example(tokenizer, example, max_length)
            selected["positions"] = torch.tensor([label != -100 for label in labels], device=device)
            if not bool(selected["positions"].any()):
                continue
            model(input_ids=torch.tensor([input_ids], device=device))
    finally:
        for handle in handles:
            handle.remove()
