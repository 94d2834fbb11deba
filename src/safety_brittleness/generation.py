"""Prompt formatting and batched generation."""

from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from dataclasses import dataclass
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


def sample_seed(seed: int, index: int) -> int:
    """Seed of the sampling generator of the prompt at position `index` of a call seeded with `seed`."""
    return seed * 1_000_003 + index


@dataclass(frozen=True)
class Request:
    """One continuation to generate: an already formatted prompt and how to decode it.

    `sample_seed` None decodes greedily; otherwise tokens are sampled at `temperature` from a
    generator seeded with it. With `stop_when`, decoding also stops once the text satisfies it.
    """

    prompt: str
    max_new_tokens: int
    sample_seed: int | None = None
    temperature: float = 1.0
    stop_when: Callable[[str], bool] | None = None


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
    sequence is reported as not ended, and its text is the prefix generated until then. Sampling
    draws the tokens of prompt i from a generator seeded with `sample_seed(seed, i)`.
    """
    requests = [
        Request(prompt, max_new_tokens, sample_seed(seed, index) if do_sample else None, temperature, stop_when)
        for index, prompt in enumerate(prompts)
    ]
    return generate_requests(model, tokenizer, requests, batch_size, description)


@torch.no_grad()
def generate_requests(
    model, tokenizer, requests: list[Request], batch_size: int, description: str = "generating",
) -> tuple[list[str], list[bool]]:
    """Generate every request, greedy and sampled alike, in batches; return texts and end-of-turn flags in request order.

    Requests are batched by prompt length to limit padding, and `decode` drops each sequence from
    its batch once it has stopped. A sampled request draws from its own generator, so its tokens
    depend on neither the batch size, the other requests nor early stopping.
    """
    if not requests:
        return [], []
    if isinstance(model, VLLMGenerator):
        # vLLM generates every response to full length; keyword verdicts are the same as with early stopping.
        return model.generate_requests(requests, description)
    prompt_ids = tokenizer([request.prompt for request in requests], add_special_tokens=False)["input_ids"]
    # A request for no new tokens has the empty response.
    order = sorted((i for i in range(len(requests)) if requests[i].max_new_tokens > 0), key=lambda i: len(prompt_ids[i]))
    responses: list[str] = [""] * len(requests)
    finished: list[bool] = [False] * len(requests)
    device = next(model.parameters()).device
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc=description, unit="batch", mininterval=2.0):
        chosen = [requests[i] for i in batch]
        generators = [
            None if request.sample_seed is None else torch.Generator(device=device).manual_seed(request.sample_seed)
            for request in chosen
        ]
        texts, ended = decode(
            model, tokenizer, [prompt_ids[i] for i in batch], [request.max_new_tokens for request in chosen],
            [request.stop_when for request in chosen], [request.temperature for request in chosen], generators,
        )
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


def sample_tokens(
    logits: torch.Tensor, temperature: float | list[float], generators: list[torch.Generator]
) -> torch.Tensor:
    """Draw one token per row from softmax(logits / temperature), row i with `generators[i]`.

    `temperature` is one value for all rows or one per row. Inverse transform sampling: one
    uniform number per row, located in the row's cumulative distribution. This draws from the same
    distribution as `torch.multinomial`, and a row's tokens do not depend on the other rows of the batch.
    """
    temperatures = torch.as_tensor(temperature, dtype=torch.float32, device=logits.device).reshape(-1, 1)
    probabilities = torch.softmax(logits.float() / temperatures, dim=-1)
    cumulative = probabilities.cumsum(dim=-1)
    uniforms = torch.stack([torch.rand((), generator=generator, device=logits.device) for generator in generators])
    targets = (uniforms * cumulative[:, -1]).unsqueeze(1)
    return torch.searchsorted(cumulative, targets, right=True).squeeze(1).clamp(max=logits.shape[-1] - 1)


def _per_row(value, rows: int, name: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != rows:
            raise ValueError(f"{name} has {len(value)} entries for a batch of {rows} rows")
        return list(value)
    return [value] * rows


# Prompts of one template share their first tokens (chat markers and system prompt). Sequences
# whose first SHARED_PREFIX_MIN tokens agree are computed once up to their common prefix.
SHARED_PREFIX_MIN = 8


def shared_prefixes(rows: list[list[int]], keep: list[int] | None = None) -> list[int]:
    """For each token sequence, the length of the prefix it shares with the other sequences that start like it.

    Sequences are grouped by their first SHARED_PREFIX_MIN tokens. A group of at least two shares
    its longest common prefix, leaving at least `keep[i]` tokens (1 by default) of each member i
    to compute after it, when that prefix is at least SHARED_PREFIX_MIN tokens long. Other
    sequences share nothing (0).
    """
    keep = keep or [1] * len(rows)
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, ids in enumerate(rows):
        if len(ids) - keep[index] >= SHARED_PREFIX_MIN:
            groups.setdefault(tuple(ids[:SHARED_PREFIX_MIN]), []).append(index)
    shared = [0] * len(rows)
    for members in groups.values():
        if len(members) < 2:
            continue
        first = rows[members[0]]
        limit = min(len(rows[index]) - keep[index] for index in members)
        common = SHARED_PREFIX_MIN
        while common < limit and all(rows[index][common] == first[common] for index in members):
            common += 1
        for index in members:
            shared[index] = common
    return shared


@torch.no_grad()
def prefix_states(model, prefix: list[int] | tuple[int, ...], device, **options) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Return the cached keys and values of every layer for one token sequence at positions 0 to len - 1."""
    cache = DynamicCache(config=model.config)
    model(
        input_ids=torch.tensor([list(prefix)], device=device),
        position_ids=torch.arange(len(prefix), device=device).unsqueeze(0),
        past_key_values=cache, use_cache=True, **options,
    )
    return [(layer.keys, layer.values) for layer in cache.layers]


def cache_from_states(model, states: list[tuple[torch.Tensor, torch.Tensor]], rows: int) -> DynamicCache:
    """Return a new cache whose `rows` rows each start with the keys and values of a batch-of-one `states`."""
    cache = DynamicCache(config=model.config)
    for index, (keys, values) in enumerate(states):
        cache.update(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1), index)
    return cache


def _left_padded(rows: list[list[int]], pad_id: int, starts: list[int], device):
    """Token ids, attention mask and positions of sequences left-padded to one width; row i starts at position starts[i]."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    positions = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    for index, (row, start) in enumerate(zip(rows, starts)):
        if row:
            ids[index, width - len(row):] = torch.tensor(row, device=device)
            mask[index, width - len(row):] = 1
            positions[index, width - len(row):] = torch.arange(start, start + len(row), device=device)
    return ids, mask, positions


@dataclass
class SharedForward:
    """Result of `forward_shared`, the model outputs and the cache to continue decoding from.

    - `output`: the model output for the rest of each sequence, left-padded, so a row's last
      positions are its last tokens.
    - `prefix_output`: the output for the distinct prefixes, or None when no sequence shares one.
    - `prefix_rows[i]`: the row of sequence i's prefix in `prefix_output`, -1 for none.
    - `shared[i]`: the length of sequence i's shared prefix.
    - `cache`, `mask` and `next_positions`: what decoding continues from.
    """

    output: object
    cache: DynamicCache
    mask: torch.Tensor
    next_positions: torch.Tensor
    shared: list[int]
    prefix_output: object = None
    prefix_rows: list[int] | None = None


@torch.no_grad()
def forward_shared(
    model, sequences: list[list[int]], pad_id: int, keep: list[int] | None = None, prefix_options: dict | None = None,
    **options,
) -> SharedForward:
    """Run token sequences through the model into a new key-value cache, computing shared prefixes once.

    Sequences that share a prefix (`shared_prefixes`, leaving `keep[i]` tokens of each to compute)
    have it computed once: the distinct prefixes run as one left-padded batch, and each sequence's
    cache rows start with the keys and values of its prefix. The rest of every sequence then runs
    as a second left-padded batch after them. Logits equal those of the whole sequences up to
    floating-point rounding. `options` go to the pass over the rests, `prefix_options` to the
    pass over the prefixes.
    """
    device = next(model.parameters()).device
    shared = shared_prefixes(sequences, keep) if len(sequences) > 1 else [0] * len(sequences)
    cache = DynamicCache(config=model.config)
    prefix_output, prefix_rows = None, None
    prefix_mask = torch.zeros((len(sequences), 0), dtype=torch.long, device=device)
    if any(shared):
        prefixes: dict[tuple[int, ...], int] = {}
        for sequence, length in zip(sequences, shared):
            if length:
                prefixes.setdefault(tuple(sequence[:length]), len(prefixes))
        prefix_rows = [prefixes[tuple(sequence[:length])] if length else -1 for sequence, length in zip(sequences, shared)]
        ids, mask, positions = _left_padded([list(prefix) for prefix in prefixes], pad_id, [0] * len(prefixes), device)
        prefix_cache = DynamicCache(config=model.config)
        prefix_output = model(
            input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=prefix_cache, use_cache=True,
            **(prefix_options or {}),
        )
        # Row -1 selects an appended all-masked row: a sequence without a shared prefix starts empty.
        select = torch.tensor([row if row >= 0 else len(prefixes) for row in prefix_rows], device=device)
        for index, layer in enumerate(prefix_cache.layers):
            keys = torch.cat([layer.keys, layer.keys.new_zeros((1, *layer.keys.shape[1:]))])
            values = torch.cat([layer.values, layer.values.new_zeros((1, *layer.values.shape[1:]))])
            cache.update(keys[select], values[select], index)
        prefix_mask = torch.cat([mask, mask.new_zeros((1, mask.shape[1]))])[select]
    rests = [sequence[length:] for sequence, length in zip(sequences, shared)]
    ids, rest_mask, positions = _left_padded(rests, pad_id, shared, device)
    mask = torch.cat([prefix_mask, rest_mask], dim=1)
    output = model(
        input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True, **options
    )
    return SharedForward(output, cache, mask, positions[:, -1:] + 1, shared, prefix_output, prefix_rows)


@torch.no_grad()
def decode(
    model,
    tokenizer,
    prompts: list[list[int]],
    max_new_tokens: int | list[int],
    stop_when: Callable[[str], bool] | None | list = None,
    temperature: float | list[float] = 1.0,
    generators: list[torch.Generator | None] | None = None,
) -> tuple[list[str], list[bool]]:
    """Continue a batch of prompts, given as token ids without padding, dropping each sequence once it stops.

    The prompts run through the model as one batch, with shared prefixes computed once
    (`forward_shared`). Each of `max_new_tokens`, `stop_when`, `temperature` and `generators` is
    one value for every row or a list with one per row. A row with a generator is sampled, one without is greedy.
    A sequence leaves the batch when it emits an end token, reaches its token limit or its text
    satisfies its `stop_when`. The key-value cache, attention mask and positions are then cut to
    the remaining sequences, so a batch costs what its live sequences cost. Greedy texts equal
    those of `model.generate` with the same stopping (which instead computes every stopped
    sequence until the last one stops). Returns the decoded texts and whether each ended with the
    tokenizer's end token.
    """
    rows = len(prompts)
    device = next(model.parameters()).device
    limits = _per_row(max_new_tokens, rows, "max_new_tokens")
    stops = _per_row(stop_when, rows, "stop_when")
    temperatures = _per_row(temperature, rows, "temperature")
    generators = _per_row(generators, rows, "generators")
    end_ids = _end_token_ids(model, tokenizer)
    tokens: list[list[int]] = [[] for _ in range(rows)]
    ended = [False] * rows
    active = torch.arange(rows, device=device)
    if min(limits) < 1:
        raise ValueError(f"max_new_tokens must be at least 1 for every row, got {min(limits)}")
    # Only the last position's logits choose the next token: the prompt's other positions would add
    # a rows x prompt length x vocabulary product to the prefill.
    options = {"logits_to_keep": 1} if trims_logits(model) else {}
    # Padded positions are masked out, so any token id serves as padding.
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    forward = forward_shared(model, [list(ids) for ids in prompts], pad_id, prefix_options=options, **options)
    output, cache, attention_mask, next_positions = forward.output, forward.cache, forward.mask, forward.next_positions
    while True:
        logits = output.logits[:, -1, :]
        chosen = logits.argmax(dim=-1)
        live = active.tolist()
        sampled = [slot for slot, row in enumerate(live) if generators[row] is not None]
        if sampled:
            slots = torch.tensor(sampled, device=logits.device)
            chosen[slots] = sample_tokens(
                logits[slots], [temperatures[live[slot]] for slot in sampled], [generators[live[slot]] for slot in sampled]
            )
        keep = []
        for slot, (row, token) in enumerate(zip(live, chosen.tolist())):
            tokens[row].append(token)
            if token in end_ids:
                ended[row] = token == tokenizer.eos_token_id
            elif len(tokens[row]) >= limits[row]:
                continue
            elif stops[row] is None or not stops[row](tokenizer.decode(tokens[row], skip_special_tokens=True)):
                keep.append(slot)
        if not keep:
            break
        if len(keep) < len(active):
            remaining = torch.tensor(keep, device=device)
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
    first. Pass the generator in place of the model to `generate`, `generate_with_status` or
    `generate_requests`.
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

    def generate_requests(self, requests: list[Request], description: str) -> tuple[list[str], list[bool]]:
        """Generate every request to its token limit; return texts and whether each ended with end of sequence."""
        prompts = [{"prompt_token_ids": self.tokenizer(request.prompt, add_special_tokens=False)["input_ids"]} for request in requests]
        # Greedy decoding is temperature 0 in vLLM. Each sampled request keeps its own seed.
        parameters = [
            self._vllm.SamplingParams(
                max_tokens=request.max_new_tokens,
                temperature=0.0 if request.sample_seed is None else request.temperature,
                seed=request.sample_seed, skip_special_tokens=True,
            )
            for request in requests
        ]
        log.info("%s: %d prompts through vLLM", description, len(requests))
        outputs = self.llm.generate(prompts, parameters, use_tqdm=True)
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
