"""Prompt formatting and batched generation."""

from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache

from safety_brittleness.models import trims_logits

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
    stop_when: Callable[[str], bool] | None = None,
) -> list[str]:
    """Generate one continuation per already-formatted prompt, in the order of `prompts`."""
    texts, _ = generate_with_status(
        model, tokenizer, prompts, max_new_tokens, batch_size, do_sample, temperature, seed, description, stop_when
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
    stop_when: Callable[[str], bool] | None = None,
) -> tuple[list[str], list[bool]]:
    """Generate continuations and report, per prompt, whether it ended with the end-of-turn token.

    With `stop_when`, a sequence also stops as soon as its text satisfies that condition. Such a
    sequence is reported as not ended, and its text is the prefix generated until then.

    Prompts are batched by length to limit padding, and `decode` drops each sequence from its
    batch once it has stopped. Sampling draws the tokens of each prompt from its own generator,
    seeded with `seed` and the prompt's position in `prompts`, so samples depend on neither the
    batch size, the order of the batches nor early stopping.
    """
    if not prompts:
        return [], []
    if isinstance(model, VLLMGenerator):
        # vLLM generates every response to full length; keyword verdicts are the same as with early stopping.
        return model.generate_with_status(prompts, max_new_tokens, do_sample, temperature, seed, description)
    tokenizer.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    responses: list[str] = [""] * len(prompts)
    finished: list[bool] = [False] * len(prompts)
    device = next(model.parameters()).device
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc=description, unit="batch", mininterval=2.0):
        encoded = tokenizer(
            [prompts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(device)
        generators = None
        if do_sample:
            generators = [torch.Generator(device=device).manual_seed(seed * 1_000_003 + i) for i in batch]
        texts, ended = decode(model, tokenizer, encoded, max_new_tokens, stop_when, temperature, generators)
        for index, text, done in zip(batch, texts, ended):
            responses[index] = text.strip()
            finished[index] = bool(done)
    return responses, finished


def _end_token_ids(model, tokenizer) -> set[int]:
    """Return the token ids that end a sequence in `model.generate`: the generation config's, else the tokenizer's."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is None:
        configured = tokenizer.eos_token_id
    return set(configured) if isinstance(configured, (list, tuple)) else {configured}


def sample_tokens(logits: torch.Tensor, temperature: float, generators: list[torch.Generator]) -> torch.Tensor:
    """Draw one token per row from softmax(logits / temperature), row i with `generators[i]`.

    Inverse transform sampling: one uniform number per row, located in the row's cumulative
    distribution. This draws from the same distribution as `torch.multinomial`, and a row's tokens
    do not depend on the other rows of the batch.
    """
    probabilities = torch.softmax(logits.float() / temperature, dim=-1)
    cumulative = probabilities.cumsum(dim=-1)
    uniforms = torch.stack([torch.rand((), generator=generator, device=logits.device) for generator in generators])
    targets = (uniforms * cumulative[:, -1]).unsqueeze(1)
    return torch.searchsorted(cumulative, targets, right=True).squeeze(1).clamp(max=logits.shape[-1] - 1)


@torch.no_grad()
def decode(
    model,
    tokenizer,
    encoded,
    max_new_tokens: int,
    stop_when: Callable[[str], bool] | None = None,
    temperature: float = 1.0,
    generators: list[torch.Generator] | None = None,
) -> tuple[list[str], list[bool]]:
    """Decode a left-padded batch, greedy or (with one generator per row) sampled, dropping each sequence once it stops.

    A sequence leaves the batch when it emits an end token or when its text satisfies `stop_when`.
    The key-value cache, attention mask and positions are then cut to the remaining sequences, so
    a batch costs what its live sequences cost. Greedy texts equal those of `model.generate` with
    the same stopping (which instead computes every stopped sequence until the last one stops).
    Returns the decoded texts and whether each ended with the tokenizer's end token.
    """
    input_ids, attention_mask = encoded["input_ids"], encoded["attention_mask"]
    rows = input_ids.shape[0]
    end_ids = _end_token_ids(model, tokenizer)
    tokens: list[list[int]] = [[] for _ in range(rows)]
    ended = [False] * rows
    active = torch.arange(rows, device=input_ids.device)
    positions = (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    # Only the last position's logits choose the next token: the prompt's other positions would add
    # a rows x prompt length x vocabulary product to the prefill.
    options = {"logits_to_keep": 1} if trims_logits(model) else {}
    output = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, past_key_values=cache, use_cache=True,
        **options,
    )
    next_positions = positions[:, -1:] + 1
    for step in range(max_new_tokens):
        logits = output.logits[:, -1, :]
        if generators is None:
            chosen = logits.argmax(dim=-1)
        else:
            chosen = sample_tokens(logits, temperature, [generators[row] for row in active.tolist()])
        keep = []
        for slot, (row, token) in enumerate(zip(active.tolist(), chosen.tolist())):
            tokens[row].append(token)
            if token in end_ids:
                ended[row] = token == tokenizer.eos_token_id
            elif stop_when is None or not stop_when(tokenizer.decode(tokens[row], skip_special_tokens=True)):
                keep.append(slot)
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) < len(active):
            remaining = torch.tensor(keep, device=input_ids.device)
            active, chosen, attention_mask = active[remaining], chosen[remaining], attention_mask[remaining]
            next_positions = next_positions[remaining]
            cache.batch_select_indices(remaining)
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(active), 1))], dim=1)
        output = model(
            input_ids=chosen.unsqueeze(1), attention_mask=attention_mask, position_ids=next_positions,
            past_key_values=cache, use_cache=True,
        )
        next_positions = next_positions + 1
    texts = tokenizer.batch_decode(tokens, skip_special_tokens=True)
    return texts, ended


BACKENDS = ("transformers", "vllm")


class VLLMGenerator:
    """Generation through vLLM for a model held in memory, behind the interface of `generate`.

    vLLM loads models from disk, so the (possibly edited) model is written to a temporary folder
    first. Pass the generator in place of the model to `generate` or `generate_with_status`.
    NOTE: tested only against a stand-in for vLLM's API, never against vLLM itself.
    """

    def __init__(self, model, tokenizer, dtype: str = "auto", gpu_memory_utilization: float = 0.5):
        try:
            import vllm
        except ImportError as error:
            raise RuntimeError(
                "runtime.generation_backend is 'vllm', but vllm is not installed; install it on a CUDA machine "
                "(pip install vllm) or set runtime.generation_backend: transformers"
            ) from error
        self._vllm = vllm
        self.tokenizer = tokenizer
        self.directory = Path(tempfile.mkdtemp(prefix="vllm-model-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.directory, True)
        model.save_pretrained(self.directory, safe_serialization=True)
        tokenizer.save_pretrained(self.directory)
        self.llm = vllm.LLM(
            model=str(self.directory), dtype=dtype, trust_remote_code=False, gpu_memory_utilization=gpu_memory_utilization,
        )

    def generate_with_status(
        self, prompts: list[str], max_new_tokens: int, do_sample: bool, temperature: float, seed: int, description: str,
    ) -> tuple[list[str], list[bool]]:
        """Generate one response per formatted prompt, and report whether each ended with end of sequence."""
        requests = [{"prompt_token_ids": self.tokenizer(prompt, add_special_tokens=False)["input_ids"]} for prompt in prompts]
        # Greedy decoding is temperature 0 in vLLM. Each sampled prompt gets its own seed.
        parameters = [
            self._vllm.SamplingParams(
                max_tokens=max_new_tokens, temperature=temperature if do_sample else 0.0,
                seed=seed * 1_000_003 + index if do_sample else None, skip_special_tokens=True,
            )
            for index in range(len(prompts))
        ]
        log.info("%s: %d prompts through vLLM", description, len(prompts))
        outputs = self.llm.generate(requests, parameters, use_tqdm=True)
        texts = [output.outputs[0].text.strip() for output in outputs]
        ended = [output.outputs[0].finish_reason == "stop" for output in outputs]
        return texts, ended

    def close(self) -> None:
        """Remove the temporary model folder."""
        self._cleanup()


def generator_for(model, tokenizer, backend: str):
    """Return what `generate` takes as its model: the model itself, or a VLLMGenerator for it."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown generation backend '{backend}'; allowed: {', '.join(BACKENDS)}")
    if backend == "vllm":
        return VLLMGenerator(model, tokenizer)
    return model


def respond_to_frame(
    model, tokenizer, frame, system_prompt: str | None, max_new_tokens: int, batch_size: int, description: str
):
    """Return a copy of a prompt table with greedy `response` and `ends_turn` columns added."""
    prompts = [chat_prompt(tokenizer, text, system_prompt) for text in frame["prompt"]]
    responses, finished = generate_with_status(
        model, tokenizer, prompts, max_new_tokens, batch_size, description=description
    )
    frame = frame.copy()
    frame["response"] = responses
    frame["ends_turn"] = finished
    return frame
