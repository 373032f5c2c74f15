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
        translation_reward([HYP], [REF], "x x")


WORDLESS = ["", "  ", "。", ".", "!?", "。。。", "... !", "…", "\u200b", "\ufeff。\u200b", "\u3000。", "- -", "？！"]


@pytest.mark.parametrize("kind", ["bleu", "rouge", "both"])
def test_a_hypothesis_without_a_word_token_gets_zero(kind):
    """Punctuation only (or empty) is paid nothing in all three reward kinds, against short references
    (where the Sec. 6.3 padding would give it matching marks) and long ones that hold the same marks."""
    for lang, refs in (("zh", ["好", "你好。", "今天天气很好。"]), ("en", ["hello", "hello .", "the cat sat on the mat ."]),
                       ("de", ["hallo !?", "guten abend ! ! ! ."])):
        for ref in refs:
            rewards = translation_reward(WORDLESS, [ref] * len(WORDLESS), lang, kind=kind)
            assert rewards == [0.0] * len(WORDLESS), (lang, ref, rewards)
            for short_punct in (True, False):
                assert translation_reward(["。", "."], [ref] * 2, lang, kind=kind, short_punct=short_punct) == [0.0, 0.0]
    # a wrong word still earns the padding's share of ROUGE-L (BLEU-4 has no 4-gram for it), a right word
    # more; digits are words
    wrong, right = translation_reward(["坏", "好"], ["好", "好"], "zh", kind=kind)
    assert wrong < right == pytest.approx(1.0) and (wrong > 0.0) == (kind != "bleu")
    assert translation_reward(["2023"], ["2023"], "en", kind=kind)[0] == pytest.approx(1.0)
    assert (translation_reward(["x ."], ["y"], "en", kind=kind)[0] > 0.0) == (kind != "bleu")


def test_has_word_reads_the_protocol_tokens():
    from rvlf.rl.rewards import has_word

    assert not any(has_word(t, lang) for t in WORDLESS for lang in ("zh", "en", "de"))
    assert all(has_word(t, "en") for t in ("a", "ä", "a\u0308", "Straße.", "3", "你", "x\u200b", "..x"))
    assert has_word("。好", "zh") and not has_word("。\u200b。", "zh")


def test_significance_rewards_agree_on_wordless_hypotheses():
    """`rvlf.text.significance` scores rewards from sentence statistics; it pays punctuation nothing too."""
    import numpy as np

    from rvlf.text.metrics import References
    from rvlf.text.significance import system_statistics

    refs = ["the cat sat on the mat .", "hello !", "a b c d e"] * 2
    hyps = [".", "!", "... ?", "the cat .", "hello !", "b c d e ."]
    stats = system_statistics(hyps, References(refs, "en", chrf=()), ("reward",))
    assert list(stats["reward"][:3]) == [0.0, 0.0, 0.0]
    assert stats["reward"] == pytest.approx(100 * np.asarray(translation_reward(hyps, refs, "en")), rel=1e-12)
