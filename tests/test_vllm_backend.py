"""The optional vLLM generation backend: its contract with vLLM's API, and a clear error without it.

vLLM needs CUDA and is not installed here, so a stand-in module records the calls that vLLM's
documented API (LLM, SamplingParams, generate on token-id prompts) would receive.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from safety_brittleness.generation import VLLMGenerator, generate_with_status, generator_for


class RecordingLLM:
    calls: list = []

    def __init__(self, model, dtype, trust_remote_code, gpu_memory_utilization):
        assert (Path(model) / "config.json").is_file()   # the in-memory model was written for vLLM to load
        self.model = model

    def generate(self, requests, parameters, use_tqdm):
        RecordingLLM.calls.append((requests, parameters))
        finish = ["stop", "length"]
        return [
            types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f" answer {index} ", finish_reason=finish[index % 2])])
            for index in range(len(requests))
        ]


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.SimpleNamespace(LLM=RecordingLLM, SamplingParams=lambda **options: options)
    monkeypatch.setitem(sys.modules, "vllm", module)
    RecordingLLM.calls = []
    return module


def test_vllm_generator_contract(fake_vllm, tiny_chat_model, smollm2_tokenizer):
    generator = generator_for(tiny_chat_model, smollm2_tokenizer, "vllm")
    assert isinstance(generator, VLLMGenerator)
    prompts = ["<|im_start|>user\nhi<|im_end|>\n", "<|im_start|>user\nbye<|im_end|>\n"]
    texts, ended = generate_with_status(generator, smollm2_tokenizer, prompts, 16, 8)
    assert texts == ["answer 0", "answer 1"]
    assert ended == [True, False]
    requests, parameters = RecordingLLM.calls[0]
    # Token ids exactly as the chat template wrote them, with no second begin-of-sequence token.
    assert requests[0]["prompt_token_ids"] == smollm2_tokenizer(prompts[0], add_special_tokens=False)["input_ids"]
    assert [p["temperature"] for p in parameters] == [0.0, 0.0]
    assert [p["max_tokens"] for p in parameters] == [16, 16]
    generate_with_status(generator, smollm2_tokenizer, prompts, 16, 8, do_sample=True, temperature=0.7, seed=3)
    _, sampled = RecordingLLM.calls[1]
    assert [p["temperature"] for p in sampled] == [0.7, 0.7]
    assert [p["seed"] for p in sampled] == [3_000_009, 3_000_010]
    folder = generator.directory
    generator.close()
    assert not folder.exists()


def test_missing_vllm_clear_error(monkeypatch, tiny_chat_model, smollm2_tokenizer):
    monkeypatch.setitem(sys.modules, "vllm", None)   # import vllm raises ImportError
    with pytest.raises(RuntimeError, match="vllm is not installed"):
        generator_for(tiny_chat_model, smollm2_tokenizer, "vllm")
    with pytest.raises(ValueError, match="unknown generation backend 'tgi'"):
        generator_for(tiny_chat_model, smollm2_tokenizer, "tgi")
    assert generator_for(tiny_chat_model, smollm2_tokenizer, "transformers") is tiny_chat_model
