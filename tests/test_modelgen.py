"""The random-weight models' synthetic tokenizers (benchmarks and GPU tests use them)."""

from __future__ import annotations

from grpo_core.testing.modelgen import synthetic_tokenizer

CORPUS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "How many clips did Natalia sell altogether in April and May? She sold 48/2 = 24 clips in May.",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting.",
] * 20


def test_the_byte_tokenizer_gives_one_token_per_byte():
    tok = synthetic_tokenizer(1000)
    text = "Natalia sold 48 clips."
    assert len(tok(text, add_special_tokens=False)["input_ids"]) == len(text.encode())
    assert len(tok) == 1000


def test_a_corpus_gives_learned_merges_digits_one_by_one_and_the_full_vocabulary():
    tok = synthetic_tokenizer(5000, CORPUS, learned=600)
    assert len(tok) == 5000  # learned tokens, then fillers, up to the model's vocabulary
    text = "Natalia sold clips to 48 of her friends in May."
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) < len(text) / 2.5  # whole words from the corpus, not bytes
    assert tok.decode(ids) == text
    # digits stay single tokens, as in Qwen2's tokenizer, so numbers cost what they cost there
    assert [tok.decode([i]) for i in tok("2024", add_special_tokens=False)["input_ids"]] == ["2", "0", "2", "4"]
    # every id a random model can emit decodes, fillers included
    assert tok.decode([4999]).startswith(" t")
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [0, 1, 2]
    chat = tok.apply_chat_template([{"role": "user", "content": "Hi 12"}], tokenize=False, add_generation_prompt=True)
    assert chat.endswith("<|im_start|>assistant\n")
