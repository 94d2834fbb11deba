"""Generation: early stopping on refusal phrases gives the same keyword verdicts as full generation."""

from __future__ import annotations

import pytest

from safety_brittleness.generation import chat_prompt, generate
from safety_brittleness.evaluation import is_degenerate
from safety_brittleness.judges import KeywordJudge

PROMPTS = [f"Question number {i}: describe item {i * 7} in a few words." for i in range(24)]


@pytest.mark.parametrize("do_sample", [False, True])
def test_early_stop_keeps_verdicts(tiny_chat_model, smollm2_tokenizer, do_sample):
    tokenizer = smollm2_tokenizer
    sent = [chat_prompt(tokenizer, text, "Be brief.") for text in PROMPTS]
    options = {"max_new_tokens": 24, "batch_size": 8, "do_sample": do_sample, "seed": 5}
    full = generate(tiny_chat_model, tokenizer, sent, **options)

    # Phrases taken from the middle of some full responses, so early stopping really triggers there.
    phrases = sorted({response.split()[3] for response in full[::3] if len(response.split()) > 5})
    assert phrases, "the tiny model produced no response long enough to take a phrase from"
    judge = KeywordJudge(phrases=tuple(phrases), min_words=5, version=0)

    stopped = generate(tiny_chat_model, tokenizer, sent, stop_when=judge.is_refusal, **options)

    full_verdicts = [judge.judge(text) for text in full]
    stopped_verdicts = [judge.judge(text) for text in stopped]
    assert stopped_verdicts == full_verdicts
    full_degenerate = [is_degenerate(text) and not verdict.refusal for text, verdict in zip(full, full_verdicts)]
    stopped_degenerate = [is_degenerate(text) and not verdict.refusal for text, verdict in zip(stopped, stopped_verdicts)]
    assert stopped_degenerate == full_degenerate
    refusals = [i for i, verdict in enumerate(full_verdicts) if verdict.refusal]
    assert len(refusals) >= 3
    assert any(len(stopped[i]) < len(full[i]) for i in refusals), "early stopping never shortened a response"
    for i, verdict in enumerate(full_verdicts):
        if not verdict.refusal:
            assert stopped[i] == full[i]


def test_generation_is_order_independent(tiny_chat_model, smollm2_tokenizer):
    sent = [chat_prompt(smollm2_tokenizer, text, None) for text in PROMPTS[:6]]
    forward = generate(tiny_chat_model, smollm2_tokenizer, sent, max_new_tokens=8, batch_size=1)
    backward = generate(tiny_chat_model, smollm2_tokenizer, sent[::-1], max_new_tokens=8, batch_size=1)
    assert forward == backward[::-1]

