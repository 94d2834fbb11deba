"""Supervised fine-tuning that gives the embedded base model a refusal behaviour."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from safety_brittleness.generation import chat_prompt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingExample:
    prompt: str
    response: str
    ends_turn: bool


def examples_from_frame(frame, tokenizer, system_prompt: str | None) -> list[TrainingExample]:
    """Return one TrainingExample per row of a prompt table with `prompt`, `response` and `ends_turn` columns."""
    return [
        TrainingExample(chat_prompt(tokenizer, row.prompt, system_prompt), row.response, bool(row.ends_turn))
        for row in frame.itertuples()
    ]


def tokenize_example(tokenizer, example: TrainingExample, max_length: int) -> tuple[list[int], list[int]]:
    """Return input ids and labels with prompt tokens masked (-100); loss falls on the response only.

    The end-of-turn token is appended to the response when the response ended naturally, so the
    model also learns to stop.
    """
    prompt_ids = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(example.response, add_special_tokens=False)["input_ids"]
    if example.ends_turn:
        response_ids = response_ids + [tokenizer.eos_token_id]
    input_ids = (prompt_ids + response_ids)[:max_length]
    labels = ([-100] * len(prompt_ids) + response_ids)[:max_length]
    return input_ids, labels


def collate(batch: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, lab) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(lab)] = torch.tensor(lab)
        attention[row, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}


def build_alignment_examples(
    tokenizer,
    harmful_prompts: list[str],
    refusal_templates: list[str],
    benign_prompts: list[str],
    benign_answers: list[str],
    benign_ends_turn: list[bool],
    safety_system_prompt: str,
    system_prompt_fraction: float,
    seed: int,
) -> list[TrainingExample]:
    """Pair harmful prompts with varied refusals and benign prompts with the base model's answers.

    A seeded `system_prompt_fraction` of the examples carries the safety system prompt and the rest
    the template's default, so the refusal does not depend on the system prompt alone.
    """
    rng = random.Random(seed)
    examples = []
    for prompt in harmful_prompts:
        system = safety_system_prompt if rng.random() < system_prompt_fraction else None
        examples.append(TrainingExample(chat_prompt(tokenizer, prompt, system), rng.choice(refusal_templates), True))
    for prompt, answer, ends in zip(benign_prompts, benign_answers, benign_ends_turn):
        system = safety_system_prompt if rng.random() < system_prompt_fraction else None
        examples.append(TrainingExample(chat_prompt(tokenizer, prompt, system), answer, ends))
    rng.shuffle(examples)
    return examples


def fine_tune(
    model,
    tokenizer,
    examples: list[TrainingExample],
    learning_rate: float,
    epochs: int,
    batch_size: int,
    max_length: int,
    warmup_fraction: float,
    weight_decay: float,
    max_grad_norm: float,
    seed: int,
    trainable: str = "blocks",
    description: str = "fine-tuning",
) -> list[float]:
    """Full fine-tuning with AdamW, linear warm-up and decay; returns the loss of every step.

    With `trainable` 'blocks' only the decoder blocks train; the (often tied) embeddings stay fixed.
    """
    from safety_brittleness.models import _decoder_layers

    device = next(model.parameters()).device
    model.train()
    model.requires_grad_(trainable == "all")
    if trainable == "blocks":
        _decoder_layers(model).requires_grad_(True)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay)
    encoded = [tokenize_example(tokenizer, example, max_length) for example in examples]
    steps_per_epoch = math.ceil(len(encoded) / batch_size)
    total_steps = steps_per_epoch * epochs
    warmup_steps = max(1, int(warmup_fraction * total_steps))

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    losses: list[float] = []
    progress = tqdm(total=total_steps, desc=description, unit="step", mininterval=2.0)
    for epoch in range(epochs):
        order = list(range(len(encoded)))
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            batch = collate([encoded[i] for i in order[start:start + batch_size]], tokenizer.pad_token_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            progress.update(1)
            progress.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    progress.close()
    model.eval()
    model.requires_grad_(False)
    log.info("fine-tuning done: %d steps, first loss %.3f, last loss %.3f", len(losses), losses[0], losses[-1])
    return losses
