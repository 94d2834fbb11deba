"""SNIP scores: one backward pass per sample must equal the per-layer, per-sample reference loop."""

from __future__ import annotations

import torch

from safety_brittleness.alignment import TrainingExample, tokenize_example
from safety_brittleness.models import block_linear_layers
from safety_brittleness.scoring import snip_scores


def naive_snip(model, tokenizer, examples, max_length):
    """Reference: for each layer separately, run every sample and accumulate |grad| of that layer only."""
    scores = {}
    for name, layer in block_linear_layers(model).items():
        model.requires_grad_(False)
        layer.weight.requires_grad_(True)
        total = torch.zeros_like(layer.weight)
        for example in examples:
            input_ids, labels = tokenize_example(tokenizer, example, max_length)
            model.zero_grad(set_to_none=True)
            loss = model(input_ids=torch.tensor([input_ids]), labels=torch.tensor([labels])).loss
            loss.backward()
            total += layer.weight.grad.abs()
            layer.weight.grad = None
        layer.weight.requires_grad_(False)
        scores[name] = total * layer.weight.detach().abs()
    return scores


def make_examples():
    return [
        TrainingExample("user: how do I bake bread? assistant:", " Mix flour and water.", True),
        TrainingExample("user: name a colour assistant:", " Blue", True),
        TrainingExample("user: tell me something harmful assistant:", " I cannot help with that.", False),
    ]


def test_snip_equals_naive_loop(tiny_llama, character_tokenizer):
    examples = make_examples()
    fast = snip_scores(tiny_llama, character_tokenizer, examples, max_length=64)
    slow = naive_snip(tiny_llama, character_tokenizer, examples, max_length=64)
    assert fast.keys() == slow.keys()
    for name in fast:
        torch.testing.assert_close(fast[name], slow[name], rtol=1e-5, atol=1e-9)


def test_snip_differs_from_abs_of_batch_gradient(tiny_llama, character_tokenizer):
    """Summing |per-sample gradient| is not |summed gradient|: the scorer must take the former."""
    examples = make_examples()
    per_sample = snip_scores(tiny_llama, character_tokenizer, examples, max_length=64)
    layers = block_linear_layers(tiny_llama)
    name, layer = next(iter(layers.items()))
    tiny_llama.requires_grad_(False)
    layer.weight.requires_grad_(True)
    total_loss = 0
    for example in examples:
        input_ids, labels = tokenize_example(character_tokenizer, example, 64)
        total_loss = total_loss + tiny_llama(input_ids=torch.tensor([input_ids]), labels=torch.tensor([labels])).loss
    (gradient,) = torch.autograd.grad(total_loss, [layer.weight])
    batched = gradient.abs() * layer.weight.detach().abs()
    assert not torch.allclose(per_sample[name], batched)
    assert torch.all(per_sample[name] >= batched - 1e-7)


def test_snip_covers_every_block_linear(tiny_llama, character_tokenizer):
    scores = snip_scores(tiny_llama, character_tokenizer, make_examples()[:1], max_length=64)
    # 2 blocks x (q, k, v, o, gate, up, down)
    assert len(scores) == 14
    assert all(name.startswith("model.layers.") for name in scores)
    assert all(bool((value >= 0).all()) for value in scores.values())


def naive_wanda(model, tokenizer, examples, max_length):
    """Reference: for each layer separately, stack its inputs at response tokens over all samples."""
    scores = {}
    for name, layer in block_linear_layers(model).items():
        rows = []

        def capture(module, inputs, output):
            rows.append(inputs[0][0])

        handle = layer.register_forward_hook(capture)
        positions = []
        with torch.no_grad():
            for example in examples:
                input_ids, labels = tokenize_example(tokenizer, example, max_length)
                model(input_ids=torch.tensor([input_ids]))
                positions.append(torch.tensor([label != -100 for label in labels]))
        handle.remove()
        stacked = torch.cat([row[mask] for row, mask in zip(rows, positions)])
        scores[name] = layer.weight.detach().abs() * torch.linalg.vector_norm(stacked, dim=0).unsqueeze(0)
    return scores


def test_wanda_equals_stacked_activations(tiny_llama, character_tokenizer):
    from safety_brittleness.scoring import wanda_scores

    examples = make_examples()
    fast = wanda_scores(tiny_llama, character_tokenizer, examples, max_length=64)
    slow = naive_wanda(tiny_llama, character_tokenizer, examples, max_length=64)
    assert fast.keys() == slow.keys()
    for name in fast:
        torch.testing.assert_close(fast[name], slow[name], rtol=1e-5, atol=1e-7)


def test_wanda_ignores_prompt_tokens(tiny_llama, character_tokenizer):
    from safety_brittleness.scoring import wanda_scores

    example = make_examples()[0]
    longer_prompt = TrainingExample("some extra prompt text " + example.prompt, example.response, example.ends_turn)
    first = wanda_scores(tiny_llama, character_tokenizer, [example], max_length=128)
    second = wanda_scores(tiny_llama, character_tokenizer, [longer_prompt], max_length=128)
    name = "model.layers.0.self_attn.q_proj"
    # The q_proj of block 0 receives each token's normalised embedding alone, so with the same response
    # tokens its input norms match exactly when prompt tokens are left out.
    torch.testing.assert_close(first[name], second[name], rtol=1e-5, atol=1e-7)
