"""Importance scores of block linear weights: SNIP and Wanda on a calibration set, magnitude and random.

Scores are computed either one-shot, all blocks from the unedited model, or sequentially: block by
block, each block scored on the model whose earlier blocks are already pruned.
"""

from __future__ import annotations

import logging
from typing import Callable

import torch
from tqdm.auto import tqdm

from safety_brittleness.activations import for_each_response_input
from safety_brittleness.alignment import TrainingExample, tokenize_example
from safety_brittleness.models import block_linear_layers, decoder_blocks

Scores = dict[str, torch.Tensor]
# Turns the scores of one or more calibration sets (by set name) into masks of the same weights.
Selector = Callable[[dict[str, Scores]], dict[str, torch.Tensor]]

log = logging.getLogger(__name__)


def snip_scores(
    model, tokenizer, examples: list[TrainingExample], max_length: int, layers: dict[str, torch.nn.Linear] | None = None,
) -> Scores:
    """Return SNIP scores |W| * sum_i |dL_i/dW| for every block linear weight (or for `layers` only).

    L_i is the mean next-token loss over the response tokens of sample i. Each sample gets its own
    backward pass, which yields the gradients of all layers at once; the absolute value is taken
    per sample before summing.
    """
    layers = layers if layers is not None else block_linear_layers(model)
    weights = [layer.weight for layer in layers.values()]
    device = weights[0].device
    model.eval()
    model.requires_grad_(False)
    for weight in weights:
        weight.requires_grad_(True)
    totals = [torch.zeros_like(weight, dtype=torch.float32) for weight in weights]

    for example in tqdm(examples, desc="SNIP", unit="sample", mininterval=2.0, disable=len(layers) < 16):
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
    squares = {name: torch.zeros(layer.in_features, dtype=torch.float64, device=layer.weight.device) for name, layer in layers.items()}

    def accumulate(name: str, features: torch.Tensor) -> None:
        squares[name] += features.double().pow(2).sum(dim=0)

    for_each_response_input(model, tokenizer, examples, max_length, layers, accumulate, "Wanda")
    return _wanda_from_squares(layers, squares)


def _wanda_from_squares(layers: dict[str, torch.nn.Linear], squares: dict[str, torch.Tensor]) -> Scores:
    """Return |W| * ||X_j||_2 from the summed squares of each layer's input features."""
    return {
        name: layer.weight.detach().abs().float() * squares[name].sqrt().float().unsqueeze(0)
        for name, layer in layers.items()
    }


def magnitude_scores(model) -> Scores:
    """Return |W| for every block linear weight: the magnitude baseline."""
    return {name: layer.weight.detach().abs().float() for name, layer in block_linear_layers(model).items()}


def random_scores(model, seed: int) -> Scores:
    """Return uniform random scores for every block linear weight, drawn in layer order from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    return {
        name: torch.rand(layer.weight.shape, generator=generator)
        for name, layer in block_linear_layers(model).items()
    }


class _StopForward(Exception):
    """Raised by a hook to end a forward pass once the first block's inputs are recorded."""


class BlockInputs:
    """The inputs of one decoder block for every calibration sample, carried forward block by block.

    Contains per sample the hidden states entering the block, the other arguments the model passes to
    its blocks (attention mask, position embeddings) and the response-token positions.
    """

    def __init__(self, hidden, arguments, positions):
        self.hidden = hidden
        self.arguments = arguments
        self.positions = positions

    @classmethod
    @torch.no_grad()
    def capture(cls, model, tokenizer, examples: list[TrainingExample], max_length: int) -> "BlockInputs":
        _, blocks = decoder_blocks(model)
        device = next(model.parameters()).device
        hidden, arguments, positions = [], [], []

        def record(module, args, kwargs):
            kwargs = dict(kwargs)
            hidden.append(args[0] if args else kwargs.pop("hidden_states"))
            arguments.append((args[1:], kwargs))
            raise _StopForward

        handle = blocks[0].register_forward_pre_hook(record, with_kwargs=True)
        try:
            for example in examples:
                input_ids, labels = tokenize_example(tokenizer, example, max_length)
                selected = torch.tensor([label != -100 for label in labels], device=device)
                if not bool(selected.any()):
                    continue
                try:
                    model(input_ids=torch.tensor([input_ids], device=device), use_cache=False)
                except _StopForward:
                    pass
                positions.append(selected)
        finally:
            handle.remove()
        return cls(hidden, arguments, positions)

    @torch.no_grad()
    def run(self, block) -> list[torch.Tensor]:
        outputs = []
        for hidden, (args, kwargs) in zip(self.hidden, self.arguments):
            output = block(hidden, *args, **kwargs)
            outputs.append(output[0] if isinstance(output, tuple) else output)
        return outputs

    @torch.no_grad()
    def for_each_response_input(self, block, layers: dict[str, torch.nn.Linear], accumulate) -> None:
        """Run `block` on the held inputs and call accumulate(name, features) for each layer of `layers`.

        `features` are the layer's inputs at the response-token positions of one sample.
        """
        current: dict[str, torch.Tensor] = {}

        def hook_for(name: str):
            def hook(module, inputs, output):
                accumulate(name, inputs[0][0][current["positions"]])
            return hook

        handles = [layer.register_forward_hook(hook_for(name)) for name, layer in layers.items()]
        try:
            for hidden, (args, kwargs), positions in zip(self.hidden, self.arguments, self.positions):
                current["positions"] = positions
                block(hidden, *args, **kwargs)
        finally:
            for handle in handles:
                handle.remove()

    @torch.no_grad()
    def wanda_scores(self, block, layers: dict[str, torch.nn.Linear]) -> Scores:
        """Wanda scores of `layers` (inside `block`) from the response-token inputs held here."""
        squares = {name: torch.zeros(layer.in_features, dtype=torch.float64, device=layer.weight.device) for name, layer in layers.items()}

        def accumulate(name: str, features: torch.Tensor) -> None:
            squares[name] += features.double().pow(2).sum(dim=0)

        self.for_each_response_input(block, layers, accumulate)
        return _wanda_from_squares(layers, squares)

    def advance(self, block) -> None:
        """Replace the held inputs by the outputs of `block`: the inputs of the next block."""
        self.hidden = self.run(block)


def sequential_masks(
    model, tokenizer, datasets: dict[str, list[TrainingExample]], method: str, max_length: int, select: Selector,
) -> dict[str, torch.Tensor]:
    """Score and prune the model block by block; return the masks and leave the model pruned.

    Block i is scored on the model whose blocks 0..i-1 are already pruned, so later blocks see
    the inputs of the pruned model. Wanda carries each calibration sample's hidden states from
    block to block, with one pass through each block to score it and one to advance. SNIP needs
    the loss at the output, so it runs one backward pass per sample for every block: L times the
    one-shot cost for L blocks.
    """
    if method not in ("snip", "wanda"):
        raise ValueError(f"sequential scoring supports snip and wanda, not '{method}'")
    prefix, blocks = decoder_blocks(model)
    layers = block_linear_layers(model)
    carried = {}
    if method == "wanda":
        carried = {name: BlockInputs.capture(model, tokenizer, examples, max_length) for name, examples in datasets.items()}
    masks: dict[str, torch.Tensor] = {}
    for index, block in enumerate(tqdm(blocks, desc=f"sequential {method}", unit="block", mininterval=2.0)):
        block_layers = {name: layer for name, layer in layers.items() if name.startswith(f"{prefix}.{index}.")}
        if method == "wanda":
            scores = {name: inputs.wanda_scores(block, block_layers) for name, inputs in carried.items()}
        else:
            scores = {name: snip_scores(model, tokenizer, examples, max_length, block_layers) for name, examples in datasets.items()}
        block_masks = select(scores)
        with torch.no_grad():
            for name, mask in block_masks.items():
                block_layers[name].weight.masked_fill_(mask.to(block_layers[name].weight.device), 0.0)
        masks.update(block_masks)
        for inputs in carried.values():
            inputs.advance(block)
        log.debug("block %d pruned: %d weights", index, sum(int(mask.sum()) for mask in block_masks.values()))
    return masks
