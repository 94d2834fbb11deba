"""Prompt formatting and batched generation."""

from __future__ import annotations

import logging

import torch
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


def chat_prompt(tokenizer, instruction: str, system_prompt: str | None) -> str:
    """Wrap one user instruction in the model's chat template, ready for the assistant's turn.

    With `system_prompt` None no system message is sent, so the template's own default applies
    (SmolLM2 inserts a default system prompt; Llama-2 inserts none).
    """
    messages = []
    if system_prompt is not None:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": instruction})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    batch_size: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
    description: str = "generating",
) -> list[str]:
    """Generate one continuation per already-formatted prompt, in the order of `prompts`."""
    texts, _ = generate_with_status(
        model, tokenizer, prompts, max_new_tokens, batch_size, do_sample, temperature, seed, description
    )
    return texts


@torch.no_grad()
def generate_with_status(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    batch_size: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
    description: str = "generating",
) -> tuple[list[str], list[bool]]:
    """Generate continuations and report, per prompt, whether it ended with the end-of-turn token.

    Prompts are batched by length to limit padding. Sampling uses a generator seeded once per call,
    so results depend on `seed`, the batch size and the prompt order.
    """
    if not prompts:
        return [], []
    tokenizer.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    responses: list[str] = [""] * len(prompts)
    finished: list[bool] = [False] * len(prompts)
    device = next(model.parameters()).device
    if do_sample:
        torch.manual_seed(seed)

    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc=description, unit="batch", mininterval=2.0):
        encoded = tokenizer(
            [prompts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(device)
        options = {"do_sample": do_sample, "max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
        if do_sample:
            options.update(temperature=temperature, top_k=0, top_p=1.0)
        output = model.generate(**encoded, **options)
        new_tokens = output[:, encoded["input_ids"].shape[1]:]
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        ended = (new_tokens == tokenizer.eos_token_id).any(dim=1).tolist()
        for index, text, done in zip(batch, texts, ended):
            responses[index] = text.strip()
            finished[index] = bool(done)
    return responses, finished
