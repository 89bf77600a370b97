"""Per-chunk padding trim, whole-group steps and the longest-first round (grpo_core.train.batching)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from tiny_models import build_tiny_qwen2  # noqa: E402

from grpo_core.train.batching import (  # noqa: E402
    LongestFirstSampler,
    group_permutation,
    grouped_shuffle,
    leading_padding,
    longest_first_swap,
    trimmed_logps,
)


def test_leading_padding_counts_columns_that_are_padding_in_every_row():
    m = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]])
    assert leading_padding(m) == 1
    assert leading_padding(torch.ones(2, 3)) == 0
    assert leading_padding(torch.zeros(2, 3)) == 0


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(build_tiny_qwen2(tmp_path_factory.mktemp("m") / "tiny"), dtype=torch.float32).eval()


def _logps(model):
    """What TRL's function computes for text: log-probs of the last `keep` tokens (and entropies)."""

    def call(ids, mask, keep, batch_size=None, compute_entropy=False):
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits[:, -keep - 1 : -1]
        logp = torch.log_softmax(logits.float(), dim=-1)
        ent = -(logp.exp() * logp).sum(-1) if compute_entropy else None
        return logp.gather(-1, ids[:, -keep:, None]).squeeze(-1), ent, None

    return call


def _left_padded_batch(lengths, completion=5, pad=0, vocab=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width + completion), pad)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, width - n :] = torch.randint(5, vocab, (n + completion,), generator=g)
        mask[i, width - n :] = 1
    return ids, mask


def test_trimmed_chunks_give_the_same_logps_and_entropies(model):
    # two chunks of 4: the first has short prompts only, so it loses 9 columns of padding
    ids, mask = _left_padded_batch([3, 4, 2, 4, 13, 4, 7, 3])
    call = _logps(model)
    full_lp, full_ent, _ = call(ids, mask, 5, compute_entropy=True)
    seen = []

    def spy(i, m, keep, **kw):
        seen.append(i.shape[1])
        return call(i, m, keep, **kw)

    lp, ent, aux = trimmed_logps(spy, ids, mask, 5, 4, compute_entropy=True)
    assert seen == [4 + 5, 13 + 5]  # each chunk cut to its own widest prompt
    assert aux is None
    torch.testing.assert_close(lp, full_lp, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ent, full_ent, rtol=1e-4, atol=1e-5)


def test_a_batch_without_shared_padding_is_passed_through_whole(model):
    ids, mask = _left_padded_batch([6, 6, 6])
    widths = []
    trimmed_logps(lambda i, m, k, **kw: (widths.append(i.shape[1]) or _logps(model)(i, m, k, **kw)), ids, mask, 5, None)
    assert widths == [11]


def test_group_permutation_moves_whole_groups():
    perm = group_permutation(32, 8)
    assert sorted(perm.tolist()) == list(range(32))
    for block in perm.view(4, 8):
        assert block[0] % 8 == 0 and block.tolist() == list(range(int(block[0]), int(block[0]) + 8))
    assert group_permutation(30, 8) is None and group_permutation(8, 1) is None


def test_grouped_shuffle_keeps_rows_together_and_falls_back():
    rows = {"ids": torch.arange(16).repeat_interleave(1).view(16, 1), "names": [f"p{i // 4}" for i in range(16)],
            "scalar": torch.tensor(3.0), "none": None}
    out = grouped_shuffle(4, fallback=lambda d: pytest.fail("fell back"))(rows)
    assert out["scalar"] is rows["scalar"] and out["none"] is None
    ids = out["ids"].view(-1).tolist()
    assert [out["names"][i] for i in range(16)] == [f"p{ids[i] // 4}" for i in range(16)]  # lists follow tensors
    assert all(len({out["names"][i] for i in range(k, k + 4)}) == 1 for k in range(0, 16, 4))
    called = []
    grouped_shuffle(5, fallback=lambda d: called.append(True) or d)(rows)
    assert called == [True]


def _rounds(seq, per_round):
    return [seq[i : i + per_round] for i in range(0, len(seq), per_round)]


@pytest.mark.parametrize(
    "n, mini, batch, repeat, shuffle",
    [(12, 1, 3, 1, True), (12, 4, 2, 1, True), (12, 2, 3, 2, True), (10, 3, 4, 2, True), (9, 2, 3, 3, False)],
)
def test_longest_first_puts_the_longest_prompts_in_the_first_round_only(n, mini, batch, repeat, shuffle):
    from collections import Counter

    from trl.trainer.utils import RepeatSampler

    lengths = [(7 * i) % 13 + 1 for i in range(n)]  # distinct-ish lengths in a scrambled order
    base = RepeatSampler(list(range(n)), mini_repeat_count=mini, batch_size=batch, repeat_count=repeat, shuffle=shuffle, seed=3)
    ref = RepeatSampler(list(range(n)), mini_repeat_count=mini, batch_size=batch, repeat_count=repeat, shuffle=shuffle, seed=3)
    told = []
    wrapped = LongestFirstSampler(base, lengths, report=told.append)
    assert len(wrapped) == len(ref)
    first, ref_first = list(wrapped), list(ref)
    top_k = sorted(lengths, reverse=True)[:batch]
    assert told == [f"longest_first: the first generation round holds the {batch} longest prompts ({top_k[-1]}-{top_k[0]} tokens)"]
    per_round = batch * mini * repeat
    assert len(first) == len(ref_first)
    head, ref_head = _rounds(first, per_round)[0], _rounds(ref_first, per_round)[0]
    top = sorted(lengths, reverse=True)[:batch]
    assert sorted((lengths[i] for i in set(head)), reverse=True) == top
    assert sorted(lengths[i] for i in set(ref_head)) != sorted(top)  # the case is not trivially true
    # the round keeps TRL's shape: each prompt mini times in a row, the block repeated
    assert head == [i for _ in range(repeat) for i in dict.fromkeys(head) for _ in range(mini)]
    # every prompt as often as its swap partner was: the epoch's counts are TRL's, relabelled
    assert sorted(Counter(first).values()) == sorted(Counter(ref_first).values())
    if n % batch == 0:
        assert Counter(first) == Counter(ref_first)
    # later rounds and epochs: TRL's order (up to the swapped labels in the first epoch)
    swap = longest_first_swap(list(dict.fromkeys(ref_head)), lengths)
    assert first == [swap.get(i, i) for i in ref_first]
    assert list(wrapped) == list(ref) and list(wrapped) == list(ref)
    assert len(told) == 1  # said once, when the first epoch starts


def test_longest_first_keeps_a_longest_prompt_that_is_already_in_the_round():
    lengths = [5, 50, 7, 40, 3, 9]
    swap = longest_first_swap([1, 2, 4], lengths)  # 1 is the longest and stays; 3 and 5 come in
    assert 1 not in swap
    assert swap == {3: 2, 2: 3, 5: 4, 4: 5}
    assert longest_first_swap([3, 1, 5], lengths) == {}  # already the longest: nothing moves


def test_longest_first_passes_through_what_it_cannot_read():
    class Plain:
        def __iter__(self):
            return iter([2, 0, 1])

        def __len__(self):
            return 3

    told = []
    s = LongestFirstSampler(Plain(), [1, 2, 3], report=told.append)
    assert list(s) == [2, 0, 1] and len(s) == 3
    # it says so, rather than letting a run believe its longest prompts came first
    assert len(told) == 1 and told[0].startswith("longest_first: not applied: the trainer's sampler (Plain)")
    with pytest.raises(AttributeError):
        s.generator
