"""Utility accuracy through lm-eval: shared prefixes give HFLM's logits and accuracy, without its environment report."""

from __future__ import annotations

import lm_eval.evaluator
import pytest
import torch
from lm_eval.models.huggingface import HFLM

from safety_brittleness import utility_model
from safety_brittleness.evaluation import evaluate_utility
from safety_brittleness.utility_model import SharedPrefixLM


def right_padded(rows: list[list[int]]) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([row + [0] * (width - len(row)) for row in rows])


def test_shared_prefix_logits_equal_hflm(tiny_chat_model, smollm2_tokenizer):
    encode = lambda text: smollm2_tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    question = encode("Question: Which of these animals is the largest one of all?\nAnswer:")
    rows = [question + encode(f" {choice}") for choice in ("mouse", "blue whale", "cat")]
    rows.append(encode("Question: What is 2 plus 2?\nAnswer: 4"))
    inputs = right_padded(rows)
    plain = HFLM(pretrained=tiny_chat_model, tokenizer=smollm2_tokenizer, batch_size=4)
    shared = SharedPrefixLM(pretrained=tiny_chat_model, tokenizer=smollm2_tokenizer, batch_size=4)

    expected = plain._model_call(inputs)
    logits = shared._model_call(inputs)

    assert logits.shape == expected.shape
    assert torch.allclose(logits, expected, atol=1e-5, rtol=1e-4)


@pytest.fixture
def no_environment_report(monkeypatch):
    def fail_if_called(results):
        raise AssertionError("the environment report ran")

    monkeypatch.setattr(lm_eval.evaluator, "add_env_info", fail_if_called)
    return fail_if_called


def test_utility_equals_plain_hflm(tiny_chat_model, smollm2_tokenizer, monkeypatch, no_environment_report):
    shared = evaluate_utility(tiny_chat_model, smollm2_tokenizer, "embedded", batch_size=8, limit=6)
    monkeypatch.setattr(utility_model, "SharedPrefixLM", HFLM)
    plain = evaluate_utility(tiny_chat_model, smollm2_tokenizer, "embedded", batch_size=8, limit=6)

    assert [row["task"] for row in shared] == [row["task"] for row in plain]
    assert [row["value"] for row in shared] == [row["value"] for row in plain]
    assert shared[-1]["task"] == "mean"
    assert shared[-1]["n"] == 36
    # The report is skipped only during the call.
    assert lm_eval.evaluator.add_env_info is no_environment_report
