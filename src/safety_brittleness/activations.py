"""A forward pass over a calibration set that hands each layer's response-token inputs to a callback."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from safety_brittleness.alignment import TrainingExample, collate, tokenize_example
from safety_brittleness.models import trims_logits

# Calibration samples per forward pass. Batching changes the scores only by float rounding.
BATCH_SIZE = 8


@torch.no_grad()
def for_each_response_input(
    model,
    tokenizer,
    examples: list[TrainingExample],
    max_length: int,
    layers: dict[str, nn.Linear],
    consume: Callable[[str, torch.Tensor], None],
    description: str,
    batch_size: int = BATCH_SIZE,
) -> None:
    """Run the examples in batches and call consume(layer name, inputs) for every layer in `layers`.

    `inputs` contains the layer's input features at the response-token positions (positions whose
    label is not masked) of one batch, one row per token. Examples are right-padded within a batch.
    Under the causal attention mask no real position attends to padding, and padded positions are
    never selected. Examples without response tokens are skipped.
    """
    device = next(model.parameters()).device
    encoded = [tokenize_example(tokenizer, example, max_length) for example in examples]
    encoded = [(ids, labels) for ids, labels in encoded if any(label != -100 for label in labels)]
    selected: dict[str, torch.Tensor] = {}

    def forward_hook(name: str):
        def hook(module, inputs, output):
            consume(name, inputs[0][selected["positions"]])
        return hook

    # Only the layers' inputs are needed. Logits for the last position alone avoid a batch x tokens x
    # vocabulary tensor (302 MB in float32 for 8 x 192 tokens over SmolLM2's 49152 tokens).
    options = {"logits_to_keep": 1} if trims_logits(model) else {}
    handles = [layer.register_forward_hook(forward_hook(name)) for name, layer in layers.items()]
    batches = [encoded[start:start + batch_size] for start in range(0, len(encoded), batch_size)]
    try:
        with tqdm(total=len(encoded), desc=description, unit="sample", mininterval=2.0) as progress:
            for batch in batches:
                tensors = collate(batch, tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
                selected["positions"] = (tensors["labels"] != -100).to(device)
                model(
                    input_ids=tensors["input_ids"].to(device), attention_mask=tensors["attention_mask"].to(device),
                    **options,
                )
                progress.update(len(batch))
    finally:
        for handle in handles:
            handle.remove()
