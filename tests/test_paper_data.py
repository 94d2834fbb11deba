"""Data formats of the paper profile: AdvBench CSV, Alpaca-format JSON, the Llama-2 chat template."""

from __future__ import annotations

import copy
import json

import pytest

from safety_brittleness import data
from safety_brittleness.models import ModelSourceError, chat_template_text


def write_advbench(path, count: int = 12) -> None:
    lines = ["goal,target"] + [f'Explain harmful thing number {i},"Sure, here is harmful thing {i}"' for i in range(count)]
    path.write_text("\n".join(lines) + "\n")


def test_advbench_csv_keeps_file_order(tmp_path):
    path = tmp_path / "harmful_behaviors.csv"
    write_advbench(path)
    frame = data.build_harmful_prompts([("download:advbench", path)], {"evaluation": 5, "attack": 0}, seed=0, split_order="file")
    assert frame["prompt"].tolist()[:2] == ["Explain harmful thing number 0", "Explain harmful thing number 1"]
    assert frame["split"].tolist() == ["evaluation"] * 5 + ["attribution"] * 7
    assert set(frame["source"]) == {"download:advbench"}
    shuffled = data.build_harmful_prompts([("download:advbench", path)], {"evaluation": 5, "attack": 0}, seed=0)
    assert shuffled["split"].tolist() != frame["split"].tolist()


def test_csv_without_goal_column(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("question,answer\nx,y\n")
    with pytest.raises(ValueError, match="no 'goal' or 'prompt' column; found question, answer"):
        data.read_prompt_file(path, "download:other")


def write_alpaca(path) -> None:
    records = [
        {"instruction": "Name a primary colour.", "input": "", "output": "Red."},
        {"instruction": "Summarise the text.", "input": "Cats sleep a lot.", "output": "Cats sleep much."},
        {"instruction": "How do I build a bomb?", "input": "", "output": "I cannot help with that."},
        {"instruction": "Give a synonym of happy.", "input": "", "output": "As an AI, I think: glad."},
        {"instruction": "Add 2 and 3.", "input": "", "output": "5"},
        {"instruction": "Name a primary colour", "input": "", "output": "Blue."},   # a duplicate prompt
    ]
    path.write_text(json.dumps(records))


def test_alpaca_filter_and_prompt_format(tmp_path):
    path = tmp_path / "alpaca_data_cleaned.json"
    write_alpaca(path)
    frame = data.build_alpaca_prompts(path, data.load_filter_phrases(), {"alignment": 0, "calibration": 2, "heldout": 1}, 0, "download:alpaca")
    assert len(frame) == 3   # the bomb and the AI-disclaimer pairs are filtered, the duplicate dropped
    assert "Summarise the text.\n\nCats sleep a lot." in frame["prompt"].tolist()
    assert frame.set_index("prompt").loc["Add 2 and 3.", "response"] == "5"
    assert sorted(frame["split"]) == ["calibration", "calibration", "heldout"]


def test_alpaca_wrong_format(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"data": []}))
    with pytest.raises(ValueError, match="not an Alpaca-format JSON list"):
        data.build_alpaca_prompts(path, [], {"alignment": 0, "calibration": 1, "heldout": 1}, 0, "x")


def test_llama2_chat_template(smollm2_tokenizer):
    tokenizer = copy.deepcopy(smollm2_tokenizer)   # the fixture is shared by the whole session
    tokenizer.chat_template = chat_template_text("llama-2")
    bos, eos = tokenizer.bos_token, tokenizer.eos_token
    with_system = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be safe."}, {"role": "user", "content": "Hi there "}],
        tokenize=False, add_generation_prompt=True,
    )
    assert with_system == f"{bos}[INST] <<SYS>>\nBe safe.\n<</SYS>>\n\nHi there [/INST]"
    dialogue = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}],
        tokenize=False, add_generation_prompt=True,
    )
    assert dialogue == f"{bos}[INST] Hi [/INST] Hello! {eos}{bos}[INST] Bye [/INST]"


def test_unknown_chat_template_named():
    with pytest.raises(ModelSourceError, match=r"neither a shipped template \(llama-2\) nor a file"):
        chat_template_text("llama-9")
