"""Prompt formatting and batched generation."""

from __future__ import annotations

import inspect
import logging
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache, StoppingCriteria, StoppingCriteriaList

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


class TextCondition(StoppingCriteria):
    """Stop each sequence as soon as its generated text satisfies `condition`.

    Used with the keyword judge: once a response contains a refusal phrase, no later token can
    change its verdict, so the rest of the sequence need not be generated.
    """

    def __init__(self, tokenizer, prompt_length: int, condition: Callable[[str], bool]):
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.condition = condition

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        new_tokens = input_ids[:, self.prompt_length:]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return torch.tensor([self.condition(text) for text in texts], dtype=torch.bool, device=input_ids.device)


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

    Prompts are batched by length to limit padding. Greedy decoding with `stop_when` runs through
    `greedy_until`, which drops stopped sequences from the batch. Sampling reseeds the global
    generator for each batch, so samples depend on `seed`, the batch size and the prompts, and not
    on early stopping.
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
    for number, batch in enumerate(tqdm(batches, desc=description, unit="batch", mininterval=2.0)):
        if do_sample:
            # One seed per batch: a batch that stops early cannot shift the random stream of the next.
            torch.manual_seed(seed * 1_000_003 + number)
        encoded = tokenizer(
            [prompts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(device)
        options = {"do_sample": do_sample, "max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
        if do_sample:
            options.update(temperature=temperature, top_k=0, top_p=1.0)
        if stop_when is not None:
            prompt_length = encoded["input_ids"].shape[1]
            options["stopping_criteria"] = StoppingCriteriaList([TextCondition(tokenizer, prompt_length, stop_when)])
        if stop_when is not None and not do_sample:
            texts, ended = greedy_until(model, tokenizer, encoded, max_new_tokens, stop_when)
        else:
            output = model.generate(**encoded, **options)
            new_tokens = output[:, encoded["input_ids"].shape[1]:]
            texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            ended = (new_tokens == tokenizer.eos_token_id).any(dim=1).tolist()
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


@torch.no_grad()
def greedy_until(
    model, tokenizer, encoded, max_new_tokens: int, stop_when: Callable[[str], bool]
) -> tuple[list[str], list[bool]]:
    """Greedy decoding of a left-padded batch that removes each sequence once it is decided.

    A sequence leaves the batch when it emits an end token or when its text satisfies `stop_when`.
    The key-value cache, attention mask and positions are then cut to the remaining sequences.
    `model.generate` instead keeps computing every stopped sequence until the last one stops, which
    costs most when a few responses run to the token limit and the rest are refusals decided after
    a few tokens. Returns the decoded texts and whether each ended with the tokenizer's end token,
    as `generate_with_status` reports it.
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
    options = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    output = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, past_key_values=cache, use_cache=True,
        **options,
    )
    next_positions = positions[:, -1:] + 1
    for step in range(max_new_tokens):
        chosen = output.logits[:, -1, :].argmax(dim=-1)
        keep = []
        for slot, (row, token) in enumerate(zip(active.tolist(), chosen.tolist())):
            tokens[row].append(token)
            if token in end_ids:
                ended[row] = token == tokenizer.eos_token_id
            elif not stop_when(tokenizer.decode(tokens[row], skip_special_tokens=True)):
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
