"""Fine-tuning attacks on the aligned model, with a region of block linear weights protected.

Two protections are supported for a boolean mask per weight (True = protected):
- freeze: the masked entries get zero gradient during training, so gradient clipping ignores
  them, and after every optimizer step they are written back to their values before the attack,
  so decoupled weight decay cannot move them either;
- rewind: training is free, and afterwards the masked entries are set back to their values before
  the attack (the reference code's variant).
Either way the protected entries end bit-identical to the aligned model's.
"""

from __future__ import annotations

import contextlib
import logging

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from safety_brittleness.alignment import TrainingExample, fine_tune
from safety_brittleness.models import block_linear_layers

log = logging.getLogger(__name__)

PROTECTIONS = ("none", "freeze", "rewind")
MIXED_PRECISIONS = (None, "bf16")


@torch.no_grad()
def _restore(layers: dict[str, torch.nn.Linear], masks: dict[str, torch.Tensor], originals: dict[str, torch.Tensor]) -> None:
    for name, mask in masks.items():
        weight = layers[name].weight
        weight.data[mask] = originals[name]


@contextlib.contextmanager
def frozen_entries(model, masks: dict[str, torch.Tensor]):
    """Keep the masked entries of block linear weights fixed while the context is open.

    Gradient hooks zero the masked entries of each gradient, and an optimizer hook writes the
    original values back after every step of any optimizer.
    """
    layers = block_linear_layers(model)
    unknown = sorted(set(masks) - set(layers))
    if unknown:
        raise KeyError(f"masks name layers missing from the model: {', '.join(unknown[:3])}")
    masks = {name: mask.to(layers[name].weight.device) for name, mask in masks.items()}
    originals = {name: layers[name].weight.detach()[mask].clone() for name, mask in masks.items()}
    keep = {name: (~mask).to(layers[name].weight.dtype) for name, mask in masks.items()}
    handles = [layers[name].weight.register_hook(lambda grad, factor=factor: grad * factor) for name, factor in keep.items()]
    handles.append(register_optimizer_step_post_hook(
        lambda optimizer, args, kwargs: _restore(layers, masks, originals)
    ))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        _restore(layers, masks, originals)


def attack(
    model, tokenizer, examples: list[TrainingExample], masks: dict[str, torch.Tensor] | None, protection: str,
    settings: dict, seed: int, description: str = "fine-tuning attack",
) -> list[float]:
    """Fine-tune `model` in place on `examples`; return the loss of every step.

    `settings` contains learning_rate, epochs, batch_size, max_length, warmup_fraction, weight_decay
    and max_grad_norm, and optionally mixed_precision ('bf16' runs forward and backward passes in
    bfloat16 autocast; weights, gradients and optimizer state stay in the model's dtype).
    `protection` is one of PROTECTIONS, and masks are required unless it is 'none'.
    """
    if protection not in PROTECTIONS:
        raise ValueError(f"unknown protection '{protection}'; allowed: {', '.join(PROTECTIONS)}")
    if protection != "none" and masks is None:
        raise ValueError(f"protection '{protection}' needs the masks of the protected region")
    precision = settings.get("mixed_precision")
    if precision not in MIXED_PRECISIONS:
        raise ValueError(f"unknown mixed_precision {precision!r}; allowed: bf16 or null")
    arguments = dict(
        learning_rate=settings["learning_rate"], epochs=settings["epochs"], batch_size=settings["batch_size"],
        max_length=settings["max_length"], warmup_fraction=settings["warmup_fraction"],
        weight_decay=settings["weight_decay"], max_grad_norm=settings["max_grad_norm"], seed=seed,
        description=description,
    )
    device_type = next(model.parameters()).device.type
    autocast = torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")
    if protection == "freeze":
        with frozen_entries(model, masks), autocast:
            return fine_tune(model, tokenizer, examples, **arguments)
    layers = block_linear_layers(model)
    originals = {name: layers[name].weight.detach()[mask].clone() for name, mask in (masks or {}).items()}
    with autocast:
        losses = fine_tune(model, tokenizer, examples, **arguments)
    if protection == "rewind":
        _restore(layers, masks, originals)
    return losses
