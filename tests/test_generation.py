"""Generation: early stopping on refusal phrases gives the same keyword verdicts as full generation,
dropping stopped sequences from a batch gives the texts of `model.generate`, and sampling draws
from the softmax distribution independently of the batch."""

from __future__ import annotations

import pytest
import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from conftest import tiny_config
from safety_brittleness.generation import (
    Request, chat_prompt, decode, generate, forward_shared, generate_requests, sample_seed, sample_tokens, shared_prefixes,
)
from safety_brittleness.evaluation import is_degenerate
from safety_brittleness.judges import KeywordJudge

PROMPTS = [f"Question number {i}: describe item {i * 7} in a few words." for i in range(24)]


class TextCondition(StoppingCriteria):
    """Reference stopping criterion for `model.generate`: stop a sequence once its text satisfies `condition`."""

    def __init__(self, tokenizer, prompt_length: int, condition):
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.condition = condition

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_length:], skip_special_tokens=True)
        return torch.tensor([self.condition(text) for text in texts], dtype=torch.bool, device=input_ids.device)


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



@pytest.fixture(scope="module")
def varied_chat_model(smollm2_tokenizer):
    """A tiny random Llama with larger initial weights, so that different prompts get different responses."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    tokenizer = smollm2_tokenizer
    config = tiny_config(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id, initializer_range=0.2,
    )
    return AutoModelForCausalLM.from_config(config).float().eval()


@pytest.mark.parametrize("max_new_tokens", [1, 24])
def test_dropping_stopped_sequences_matches_generate(varied_chat_model, smollm2_tokenizer, max_new_tokens):
    model, tokenizer = varied_chat_model, smollm2_tokenizer
    sent = [chat_prompt(tokenizer, text, "Be brief.") for text in PROMPTS[:12]]
    encoded = tokenizer(sent, return_tensors="pt", padding=True, add_special_tokens=False)
    prompt_length = encoded["input_ids"].shape[1]
    full = tokenizer.batch_decode(
        model.generate(**encoded, do_sample=False, max_new_tokens=24, pad_token_id=tokenizer.pad_token_id)[:, prompt_length:],
        skip_special_tokens=True,
    )
    # A word from a different position of each of several responses, so sequences stop at different steps.
    phrases = tuple(sorted({text.split()[1 + i] for i, text in enumerate(full[:6]) if len(text.split()) > 7}))
    assert len(phrases) >= 3, "the tiny model produced too few long responses to take phrases from"
    judge = KeywordJudge(phrases=phrases, min_words=5, version=0)

    condition = StoppingCriteriaList([TextCondition(tokenizer, prompt_length, judge.is_refusal)])
    reference = model.generate(
        **encoded, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
        stopping_criteria=condition,
    )[:, prompt_length:]
    expected = tokenizer.batch_decode(reference, skip_special_tokens=True)
    expected_ended = (reference == tokenizer.eos_token_id).any(dim=1).tolist()

    prompt_ids = tokenizer(sent, add_special_tokens=False)["input_ids"]
    texts, ended = decode(model, tokenizer, prompt_ids, max_new_tokens, judge.is_refusal)
    assert texts == expected
    # SmolLM2 pads with its end token, so `generate` output shows a stopped sequence as ended too.
    for text, done, reference_done in zip(texts, ended, expected_ended):
        if judge.is_refusal(text):
            assert not done
        else:
            assert done == reference_done
    if max_new_tokens > 1:
        lengths = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts]
        assert min(lengths) < max(lengths), "every sequence stopped at the same step"


def test_greedy_decode_matches_generate(varied_chat_model, smollm2_tokenizer):
    model, tokenizer = varied_chat_model, smollm2_tokenizer
    sent = [chat_prompt(tokenizer, text, None) for text in PROMPTS[:12]]
    encoded = tokenizer(sent, return_tensors="pt", padding=True, add_special_tokens=False)
    prompt_length = encoded["input_ids"].shape[1]
    reference = model.generate(**encoded, do_sample=False, max_new_tokens=20, pad_token_id=tokenizer.pad_token_id)
    expected = tokenizer.batch_decode(reference[:, prompt_length:], skip_special_tokens=True)

    texts, _ = decode(model, tokenizer, tokenizer(sent, add_special_tokens=False)["input_ids"], 20)

    assert texts == expected


def test_sample_tokens_follow_softmax():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -30.0]]).repeat(20_000, 1)
    generators = [torch.Generator().manual_seed(index) for index in range(len(logits))]

    tokens = sample_tokens(logits, 0.8, generators)

    expected = torch.softmax(logits[0] / 0.8, dim=-1)
    observed = torch.bincount(tokens, minlength=5).double() / len(tokens)
    assert torch.allclose(observed, expected.double(), atol=0.01)
    assert int(tokens.max()) < 5


def test_sampling_ignores_batch_size(tiny_chat_model, smollm2_tokenizer):
    sent = [chat_prompt(smollm2_tokenizer, text, None) for text in PROMPTS[:8]]
    options = {"max_new_tokens": 12, "do_sample": True, "temperature": 1.0, "seed": 3}

    whole = generate(tiny_chat_model, smollm2_tokenizer, sent, batch_size=8, **options)
    pairs = generate(tiny_chat_model, smollm2_tokenizer, sent, batch_size=2, **options)
    other_seed = generate(tiny_chat_model, smollm2_tokenizer, sent, batch_size=8, **{**options, "seed": 4})

    assert whole == pairs
    assert whole != other_seed


def test_mixed_requests_equal_separate_calls(varied_chat_model, smollm2_tokenizer):
    model, tokenizer = varied_chat_model, smollm2_tokenizer
    greedy = [chat_prompt(tokenizer, text, "Be brief.") for text in PROMPTS[:6]]
    short = [chat_prompt(tokenizer, text, None) for text in PROMPTS[6:10]]
    raw = PROMPTS[10:16]
    stop = KeywordJudge(phrases=("the", "a"), min_words=5, version=0).is_refusal

    separate = (
        generate(model, tokenizer, greedy, max_new_tokens=14, batch_size=4)
        + generate(model, tokenizer, short, max_new_tokens=5, batch_size=4, stop_when=stop)
        + generate(model, tokenizer, raw, max_new_tokens=10, batch_size=4, do_sample=True, temperature=0.7, seed=2)
    )
    requests = (
        [Request(prompt, 14) for prompt in greedy]
        + [Request(prompt, 5, stop_when=stop) for prompt in short]
        + [Request(prompt, 10, sample_seed(2, index), 0.7) for index, prompt in enumerate(raw)]
    )
    mixed, _ = generate_requests(model, tokenizer, requests, batch_size=16)

    assert mixed == separate
    assert len({len(text.split()) for text in mixed}) > 2, "every response has the same length"


def test_decode_rejects_an_empty_token_limit(tiny_chat_model, smollm2_tokenizer):
    prompt_ids = smollm2_tokenizer(["hello"], add_special_tokens=False)["input_ids"]
    with pytest.raises(ValueError, match="max_new_tokens must be at least 1"):
        decode(tiny_chat_model, smollm2_tokenizer, prompt_ids, [0])
    assert generate_requests(tiny_chat_model, smollm2_tokenizer, [Request("hello", 0)], batch_size=4) == ([""], [False])


def test_shared_prefixes_group_sequences_by_their_start():
    system = list(range(100, 112))
    rows = [system + [1, 2, 3], system + [1, 2, 4, 5], system + [7], list(range(20)), [5, 6]]

    shared = shared_prefixes(rows)

    # The first three share the 12 system tokens. The third keeps its last token to compute, so the
    # group stops there. The others start alone or are too short.
    assert shared == [12, 12, 12, 0, 0]
    assert shared_prefixes([system + [1, 2, 3], system + [1, 2, 4]]) == [14, 14]


def test_shared_prefixes_leave_the_tokens_to_keep():
    system = list(range(100, 112))
    rows = [system + [1, 2, 3], system + [1, 2, 4, 5]]
    assert shared_prefixes(rows, keep=[3, 1]) == [12, 12]
    assert shared_prefixes(rows, keep=[5, 1]) == [10, 10]
    assert shared_prefixes(rows, keep=[8, 1]) == [0, 0]


def test_forward_of_shared_prefixes_equals_the_whole_sequences(varied_chat_model, smollm2_tokenizer):
    model, tokenizer = varied_chat_model, smollm2_tokenizer
    sent = (
        [chat_prompt(tokenizer, text, "Be brief.") for text in PROMPTS[:3]]
        + [chat_prompt(tokenizer, text, None) for text in PROMPTS[3:6]]
        + PROMPTS[6:8]
    )
    sequences = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in sent]
    lengths = [len(sequence) for sequence in sequences]

    forward = forward_shared(model, sequences, tokenizer.pad_token_id)

    shared = forward.shared
    assert shared[0] == shared[1] == shared[2] > 0
    assert shared[3] == shared[4] == shared[5] > 0
    assert shared[0] != shared[3]
    assert shared[6:] == [0, 0]
    assert forward.prefix_rows == [0, 0, 0, 1, 1, 1, -1, -1]
    with torch.no_grad():
        for index, sequence in enumerate(sequences):
            whole = model(input_ids=torch.tensor([sequence])).logits[0]
            rest = lengths[index] - shared[index]
            assert torch.allclose(forward.output.logits[index, -rest:], whole[shared[index]:], atol=1e-5, rtol=1e-4)
            if shared[index]:
                prefix = forward.prefix_output.logits[forward.prefix_rows[index], -shared[index]:]
                assert torch.allclose(prefix, whole[:shared[index]], atol=1e-5, rtol=1e-4)
    assert forward.next_positions.squeeze(1).tolist() == lengths
    assert forward.mask.sum(dim=1).tolist() == lengths
    assert forward.cache.get_seq_length() == forward.mask.shape[1] < max(lengths) + max(shared)
