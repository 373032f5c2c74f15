"""The SLT-GRPO reward (Eq. 15): `translation_reward` = lam * BLEU-4 + (1 - lam) * ROUGE-L, in [0, 1].

The sentence reward is also an evaluation metric (dev/test `reward`, paired tests in
`rvlf.text.significance`), so it lives on the text side, `rvlf.text.reward`; this module is where
the reinforcement side takes it from.
"""

from rvlf.text.reward import KINDS, TERMINAL_MARKS, has_word, pad_short, translation_reward

__all__ = ["KINDS", "TERMINAL_MARKS", "has_word", "pad_short", "translation_reward"]
