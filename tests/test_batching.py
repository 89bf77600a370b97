"""Per-chunk padding trim and whole-group steps (grpo_core.train.batching)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from tiny_models import build_tiny_qwen2  # noqa: E402

from grpo_core.train.batching import group_permutation, grouped_shuffle, leading_padding, trimmed_logps  # noqa: E402


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
