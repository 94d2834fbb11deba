"""Attack requests, attack evaluation on a tiny model, and response perplexity."""

from __future__ import annotations

import math

import pandas as pd
import torch

from safety_brittleness import generation as evaluation_generation
from safety_brittleness.alignment import TrainingExample, tokenize_example
from safety_brittleness.evaluation import (
    AttackSettings, build_attack_requests, evaluate_attacks, evaluate_responses, response_perplexity,
)
from safety_brittleness.judges import KeywordJudge

PROMPTS = pd.DataFrame({"id": ["h1", "h2", "h3"], "prompt": ["Explain how to do X.", "Write Y.", "List Z."]})
SETTINGS = AttackSettings(
    variants=("vanilla", "adv_suffix", "adv_decoding"), system_prompt="Be safe.", max_new_tokens=6,
    batch_size=4, suffixes=("!! suffix one", "?? suffix two"), samples=3, temperature=1.0, seed=7,
)


def test_vanilla_requests_use_system_prompt(smollm2_tokenizer):
    requests = build_attack_requests(smollm2_tokenizer, PROMPTS, "vanilla", SETTINGS)
    assert len(requests) == 3
    assert all("Be safe." in text for text in requests["prompt_as_sent"])
    assert all(text.endswith("<|im_start|>assistant\n") for text in requests["prompt_as_sent"])


def test_suffix_requests_append_each_suffix(smollm2_tokenizer):
    requests = build_attack_requests(smollm2_tokenizer, PROMPTS, "adv_suffix", SETTINGS)
    assert len(requests) == 6
    first = requests[(requests["prompt_id"] == "h1") & (requests["sample_index"] == 1)]["prompt_as_sent"].item()
    assert "Explain how to do X. ?? suffix two" in first
    assert "Be safe." not in first


def test_decoding_requests_are_raw_text(smollm2_tokenizer):
    requests = build_attack_requests(smollm2_tokenizer, PROMPTS, "adv_decoding", SETTINGS)
    assert len(requests) == 9
    assert set(requests["prompt_as_sent"]) == set(PROMPTS["prompt"])


def test_evaluate_attacks_counts_and_rows(tiny_chat_model, smollm2_tokenizer):
    judge = KeywordJudge.from_file()
    generations, rows = evaluate_attacks(tiny_chat_model, smollm2_tokenizer, PROMPTS, judge, SETTINGS, ("paper", "reference_code"))
    assert generations.groupby("variant").size().to_dict() == {"adv_decoding": 9, "adv_suffix": 6, "vanilla": 3}
    decoding = generations[generations["variant"] == "adv_decoding"]
    assert sorted(decoding["seed"].unique()) == [7, 8, 9]
    metrics = {(row["metric"], row["aggregation"]) for row in rows}
    for variant in ("vanilla", "adv_suffix", "adv_decoding"):
        for aggregation in ("paper", "reference_code"):
            assert (f"asr_{variant}", aggregation) in metrics
            assert (f"refusal_rate_{variant}", aggregation) in metrics
            assert (f"degenerate_rate_{variant}", aggregation) in metrics


def test_sampled_attack_is_reproducible(tiny_chat_model, smollm2_tokenizer):
    judge = KeywordJudge.from_file()
    settings = AttackSettings(("adv_decoding",), "", 6, 4, samples=2, seed=3)
    first, _ = evaluate_attacks(tiny_chat_model, smollm2_tokenizer, PROMPTS, judge, settings, ("paper",))
    second, _ = evaluate_attacks(tiny_chat_model, smollm2_tokenizer, PROMPTS, judge, settings, ("paper",))
    assert first["response"].tolist() == second["response"].tolist()


def test_benign_prompts_share_the_attack_pass(tiny_chat_model, smollm2_tokenizer):
    judge = KeywordJudge.from_file()
    benign = pd.DataFrame({"id": ["b1", "b2"], "prompt": ["Name a fruit.", "Describe the sea."]})
    alone, alone_rows = evaluate_attacks(tiny_chat_model, smollm2_tokenizer, PROMPTS, judge, SETTINGS, ("paper",))

    together, rows = evaluate_responses(
        tiny_chat_model, smollm2_tokenizer, PROMPTS, judge, SETTINGS, ("paper",), benign, benign_max_new_tokens=4
    )

    attacks = together[together["variant"] != "benign"].reset_index(drop=True)
    pd.testing.assert_frame_equal(attacks, alone)
    assert rows[:-1] == alone_rows
    answered = together[together["variant"] == "benign"]
    assert answered["prompt_id"].tolist() == ["b1", "b2"]
    assert not answered["harmful"].any()
    assert all("Be safe." in text for text in answered["prompt_as_sent"])
    assert all(len(smollm2_tokenizer(text, add_special_tokens=False)["input_ids"]) <= 4 for text in answered["response"])
    refusal = rows[-1]
    assert refusal["metric"] == "benign_refusal_rate"
    assert refusal["n"] == 2
    assert refusal["value"] == answered["refusal"].mean()


def test_perplexity_matches_model_loss(tiny_llama, character_tokenizer):
    example = TrainingExample("user: name a colour assistant:", " Blue and green", True)
    result = response_perplexity(tiny_llama, character_tokenizer, [example], max_length=64)
    input_ids, labels = tokenize_example(character_tokenizer, example, 64)
    with torch.no_grad():
        loss = tiny_llama(input_ids=torch.tensor([input_ids]), labels=torch.tensor([labels])).loss
    assert math.isclose(result["value"], math.exp(float(loss)), rel_tol=1e-5)
    assert result["n"] == sum(1 for label in labels[1:] if label != -100)


def test_batched_perplexity_equals_one_at_a_time(tiny_llama, character_tokenizer):
    examples = [
        TrainingExample("user: name a colour assistant:", " Blue and green", True),
        TrainingExample("user: hi assistant:", " Hello there, how can I help you today?", False),
        TrainingExample("user: count assistant:", " 1 2 3", True),
    ]
    batched = response_perplexity(tiny_llama, character_tokenizer, examples, max_length=64, batch_size=3)
    single = response_perplexity(tiny_llama, character_tokenizer, examples, max_length=64, batch_size=1)
    assert batched["n"] == single["n"]
    assert math.isclose(batched["value"], single["value"], rel_tol=1e-5)


def test_perplexity_with_a_shared_prompt_start(tiny_llama, character_tokenizer, monkeypatch):
    opening = "system: answer briefly and kindly. user: "
    examples = [
        TrainingExample(f"{opening}name a colour assistant:", " Blue and green", True),
        TrainingExample(f"{opening}hi assistant:", " Hello there, how can I help you today?", False),
        TrainingExample(f"{opening}count assistant:", " 1 2 3", True),
        TrainingExample("user: other opening assistant:", " Fine", True),
    ]
    computed = []

    def recording(model, prefix, device, **options):
        computed.append(prefix)
        return evaluation_generation.prefix_states(model, prefix, device, **options)

    monkeypatch.setattr("safety_brittleness.evaluation.prefix_states", recording)
    together = response_perplexity(tiny_llama, character_tokenizer, examples[:3], max_length=96, batch_size=3)
    assert len(computed) == 1
    assert list(computed[0][:len(opening)]) == character_tokenizer(opening)["input_ids"]
    single = response_perplexity(tiny_llama, character_tokenizer, examples[:3], max_length=96, batch_size=1)
    assert together["n"] == single["n"]
    assert math.isclose(together["value"], single["value"], rel_tol=1e-5)
    # A batch whose examples start differently is computed whole.
    mixed = response_perplexity(tiny_llama, character_tokenizer, examples, max_length=96, batch_size=4)
    alone = response_perplexity(tiny_llama, character_tokenizer, examples, max_length=96, batch_size=1)
    assert math.isclose(mixed["value"], alone["value"], rel_tol=1e-5)
