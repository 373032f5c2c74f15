"""The SLT-GRPO translation reward (Eq. 15, Table 7, Sec. 6.3 short sentences)."""

from __future__ import annotations

import random

import pytest

from rvlf.errors import RvlfError
from rvlf.rl.rewards import pad_short, translation_reward
from rvlf.text.metrics import sentence_scores

HYP, REF = "the cat sat on a mat", "the cat sat on the mat"


def test_reward_combines_bleu4_and_rouge_l():
    s = sentence_scores(HYP, REF, "en")
    both = translation_reward([HYP], [REF], "en", lam=0.3)[0]
    assert both == pytest.approx(0.3 * s["bleu4"] / 100 + 0.7 * s["rouge_l"] / 100)
    assert translation_reward([HYP], [REF], "en", kind="bleu")[0] == pytest.approx(s["bleu4"] / 100)
    assert translation_reward([HYP], [REF], "en", kind="rouge")[0] == pytest.approx(s["rouge_l"] / 100)
    # the default is lambda = 0.5
    assert translation_reward([HYP], [REF], "en")[0] == pytest.approx((s["bleu4"] + s["rouge_l"]) / 200)


def test_perfect_and_empty_hypotheses():
    assert translation_reward(["世界上没有后悔药"], ["世界上没有后悔药"], "zh")[0] == pytest.approx(1.0)
    # an empty hypothesis is 0 even though padding would give it matching marks
    assert translation_reward(["", "  "], ["好", "你好"], "zh") == [0.0, 0.0]


def test_pad_short_reaches_four_protocol_tokens():
    assert pad_short("我好", "你好", "zh") == ("我好。。", "你好。。")
    assert pad_short("guten", "guten abend", "de") == ("guten . .", "guten abend . .")
    assert pad_short("x", "a b c d", "en") == ("x", "a b c d")
    assert pad_short("x", "世 界 上 有", "zh") == ("x", "世 界 上 有")  # 4 characters already


def test_short_punct_changes_the_scored_text():
    # unpadded: LCS 1 of 2 each way -> ROUGE-L 0.5; padded "我好。。" vs "你好。。": 3 of 4 -> 0.75
    assert translation_reward(["我好"], ["你好"], "zh", kind="rouge", short_punct=False)[0] == pytest.approx(0.5)
    assert translation_reward(["我好"], ["你好"], "zh", kind="rouge")[0] == pytest.approx(0.75)
    # a long reference is left alone
    assert translation_reward([HYP], [REF], "en", short_punct=True) == translation_reward(
        [HYP], [REF], "en", short_punct=False)


def test_rewards_lie_in_unit_interval():
    rng = random.Random(0)
    vocab = "我你他的是在不了有人"
    refs = ["".join(rng.choices(vocab, k=rng.randint(1, 12))) for _ in range(200)]
    hyps = ["".join(rng.choices(vocab, k=rng.randint(0, 12))) for _ in range(200)]
    for kind in ("bleu", "rouge", "both"):
        r = translation_reward(hyps, refs, "zh", kind=kind)
        assert len(r) == 200 and all(0.0 <= x <= 1.0 for x in r)
        assert max(r) > min(r)


def test_bad_arguments_are_errors():
    with pytest.raises(RvlfError, match="unknown reward 'bleu4'"):
        translation_reward([HYP], [REF], "en", kind="bleu4")
    with pytest.raises(RvlfError, match="lambda"):
        translation_reward([HYP], [REF], "en", lam=1.5)
    with pytest.raises(RvlfError, match="2 hypotheses but 1 references"):
        translation_reward([HYP, HYP], [REF], "en")
    with pytest.raises(RvlfError, match="unknown language"):
        translation_reward([HYP], [REF], "xx")
