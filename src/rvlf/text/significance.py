"""Is a difference between two systems real? Paired bootstrap resampling and approximate randomisation.

Both systems translate the same test sentences. `paired_test(baseline, system, refs, lang)` returns,
for each of BLEU-4, ROUGE-L, chrF and the Eq. 15 reward (all 0-100), the two corpus scores, their
difference (system - baseline), a 95% interval of that difference and a two-sided p-value:

- **Paired bootstrap** (`test="bs"`, Koehn 2004; Efron & Tibshirani 1993, Sec. 16.4): R resamples of
  the N sentences with replacement, the *same* resampled indices for both systems and for every
  metric (drawn as sacrebleu's `--paired-bs` draws them: `np.random.default_rng(seed).choice(N, (R, N))`).
  `ci95` is the 2.5%-97.5% range of the R resampled differences (sacrebleu's order statistics,
  index R//40 from each end). The p-value is the share of resampled differences, shifted to mean 0
  (the null hypothesis), at least as far from 0 as the observed difference: (count + 1) / (R + 1).
- **Approximate randomisation** (`test="ar"`, Riezler & Maxwell 2005, sacrebleu's `--paired-ar`):
  R trials that swap each sentence's two translations with probability 1/2 (sacrebleu's draw:
  `rng.integers(2, size=(R, N), dtype=bool)`); p = (count(|trial difference| >= |observed|) + 1) / (R + 1).
  `ci95` then comes from R bootstrap resamples drawn next from the same generator.

Corpus BLEU and chrF are recomputed from summed per-sentence sufficient statistics (sacrebleu's,
through `rvlf.text.metrics.References`, the reference side prepared once) with numpy over all resamples at once; ROUGE-L and
the reward are means of sentence scores. The scores equal `rvlf.text.metrics.corpus_scores` and the
mean `rvlf.text.reward.translation_reward` x 100, and each resampled BLEU / chrF equals sacrebleu's
`compute_bleu` / `_compute_f_score` on the same resample.

`tokenize` (`rvlf compare --tokenize`) scores every metric on a sacrebleu tokenisation's tokens instead
of the protocol's; BLEU then uses sacrebleu's default exp smoothing (`bleu4_from_sums(..., "exp")`).

One departure from sacrebleu: its p-value counts `|d_b| - mean|d_b| > |d_obs|` with a strict `>`, so
a system compared with itself gets p = 1/(R+1) ("significant"); rvlf counts ties as at least as
extreme and centres the signed differences, so that case gives p = 1 and the test is two-sided.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sacrebleu.metrics.bleu import BLEU

from rvlf.errors import RvlfError
from rvlf.text.metrics import MAX_ORDER, SLRT, References, check_lang, check_tokenize, chrf_metric, smooth_method
from rvlf.text.reward import has_word, translation_reward

METRICS = ("bleu4", "rouge_l", "chrf", "reward")
TESTS = {"bs": "paired bootstrap resampling", "ar": "approximate randomisation"}
_CHUNK_ELEMENTS = 1 << 22  # resample rows processed at once: rows x N <= 4M (32 MB of float64)


def system_statistics(hyps: Sequence[str], refs: References, metrics: Sequence[str] = METRICS) -> dict[str, np.ndarray]:
    """Per-sentence statistics of one system against prepared references, float64 arrays with N rows.

    `bleu` (N, 10): `[hyp_len, ref_len, correct_1..4, total_1..4]`; `chrf` (N, 18): sacrebleu chrF
    `[hyp, ref, match]` for character orders 1..6; `rouge_l` (N,) and `reward` (N,): sentence ROUGE-L
    and Eq. 15 reward (lambda 0.5, short-sentence padding, as `rvlf evaluate`), 0-100. Only what
    `metrics` needs is computed. The tokens are `refs.tokenize`'s.
    """
    n = len(refs)
    stats = refs.statistics(hyps)
    out = {"bleu": np.asarray(stats["bleu"], dtype=np.float64).reshape(n, 2 + 2 * MAX_ORDER),
           "rouge_l": 100.0 * np.asarray(stats["rouge_l"], dtype=np.float64)}
    if "chrf" in metrics:
        out["chrf"] = np.asarray(stats["chrf"], dtype=np.float64).reshape(n, -1)
    if "reward" in metrics:
        out["reward"] = _rewards(hyps, refs, stats)
    return out


def _rewards(hyps: Sequence[str], refs: References, stats: dict[str, list]) -> np.ndarray:
    """`100 * rvlf.text.reward.translation_reward(hyps, refs, lang)` (Eq. 15, lambda 0.5), reusing the
    sentence statistics: where the reference has >= 4 tokens the reward's short-sentence padding
    changes nothing, so it is 0.5 sentence BLEU-4 (effective order) + 0.5 ROUGE-L of those statistics
    (0 for a hypothesis without a word token, `rvlf.text.reward.has_word`); the few short references are
    scored by the reward itself.
    Tests check equality with `translation_reward` sentence by sentence."""
    out = np.zeros(len(refs))
    short = []
    smooth = smooth_method(refs.tokenize)
    for i, (b, rouge, ref_tokens) in enumerate(zip(stats["bleu"], stats["rouge_l"], refs.tokens)):
        if len(ref_tokens) < MAX_ORDER:
            short.append(i)
        elif b[0] > 0 and has_word(hyps[i], refs.lang, refs.tokenize):
            bleu4 = BLEU.compute_bleu(list(b[2:2 + MAX_ORDER]), list(b[2 + MAX_ORDER:]), b[0], b[1], smooth_method=smooth,
                                      effective_order=True).score
            out[i] = 0.5 * bleu4 + 50.0 * rouge
    if short:
        out[short] = 100.0 * np.asarray(translation_reward([hyps[i] for i in short], [refs.refs[i] for i in short],
                                                           refs.lang, tokenize=refs.tokenize))
    return out


def bleu4_from_sums(sums: np.ndarray, smooth: str = "none") -> np.ndarray:
    """Corpus BLEU-4 (0-100) of each row of summed BLEU statistics, shape (R, 10) -> (R,).

    sacrebleu's `BLEU.compute_bleu` with `smooth_method` `none` or `exp`, no effective order, vectorised:
    `none`: 0 when any order has no match; `exp`: the k-th order without a match has precision
    100 / (2^k total) (0 when no order has a match, or an order has no n-gram); brevity penalty
    exp(1 - ref/hyp) when hyp < ref (0 for hyp = 0).
    """
    sums = np.atleast_2d(sums)
    sys_len, ref_len = sums[:, 0], sums[:, 1]
    correct, total = sums[:, 2:2 + MAX_ORDER], sums[:, 2 + MAX_ORDER:]
    with np.errstate(divide="ignore", invalid="ignore"):
        safe_total = np.where(total > 0, total, 1)
        if smooth == "exp":
            ok = (correct > 0).any(axis=1) & (total > 0).all(axis=1)
            k = np.cumsum(correct == 0, axis=1)
            prec = np.where(correct > 0, 100.0 * correct / safe_total, 100.0 / (2.0 ** k * safe_total))
        elif smooth == "none":
            ok = (correct > 0).all(axis=1)
            prec = np.where(correct > 0, 100.0 * correct / safe_total, 1.0)
        else:
            raise RvlfError(f"unknown smoothing {smooth!r}")
        log_p = np.log(prec)
        bp = np.where(sys_len < ref_len, np.exp(1.0 - ref_len / np.where(sys_len > 0, sys_len, 1)), 1.0)
    bp = np.where(sys_len > 0, bp, 0.0)
    return np.where(ok, bp * np.exp(log_p.mean(axis=1)), 0.0)


def chrf_from_sums(sums: np.ndarray, beta: float = 2.0) -> np.ndarray:
    """Corpus chrF (0-100) of each row of summed chrF statistics, shape (R, 3 x orders) -> (R,).

    sacrebleu's `CHRF._compute_f_score` (default, effective-order averaging), vectorised: precision
    and recall averaged over the orders with both hypothesis and reference n-grams, then F-beta.
    """
    sums = np.atleast_2d(sums)
    n_hyp, n_ref, n_match = sums[:, 0::3], sums[:, 1::3], sums[:, 2::3]
    valid = (n_hyp > 0) & (n_ref > 0)
    count = valid.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(valid, n_match / np.where(n_hyp > 0, n_hyp, 1), 0.0).sum(axis=1)
        rec = np.where(valid, n_match / np.where(n_ref > 0, n_ref, 1), 0.0).sum(axis=1)
        prec, rec = np.where(count > 0, prec / np.maximum(count, 1), 0.0), np.where(count > 0, rec / np.maximum(count, 1), 0.0)
        f2 = beta ** 2
        denom = f2 * prec + rec
        score = np.where(prec + rec > 0, 100.0 * (1 + f2) * prec * rec / np.where(denom > 0, denom, 1), 0.0)
    return score


_STATS_OF = {"bleu": "bleu4", "chrf": "chrf", "rouge_l": "rouge_l", "reward": "reward"}


def _pack(stats: dict[str, np.ndarray], metrics: Sequence[str]) -> tuple[np.ndarray, dict[str, slice]]:
    """The statistics `metrics` need as one (N, K) matrix and the columns of each key, so that one
    matrix product sums all of them (the weights matrix is read once)."""
    cols, parts, k = {}, [], 0
    for key, metric in _STATS_OF.items():
        if metric in metrics and key in stats:
            v = stats[key].reshape(len(stats[key]), -1)
            cols[key] = slice(k, k + v.shape[1])
            parts.append(v)
            k += v.shape[1]
    return np.hstack(parts), cols


def _unpack(sums: np.ndarray, cols: dict[str, slice]) -> dict[str, np.ndarray]:
    return {key: sums[:, c] if c.stop - c.start > 1 else sums[:, c.start] for key, c in cols.items()}


def corpus_metrics(stats: dict[str, np.ndarray], weights: np.ndarray | None = None,
                   metrics: Sequence[str] = METRICS, smooth: str = "none") -> dict[str, np.ndarray]:
    """Corpus scores of `metrics` for each row of `weights` (R, N): how often each sentence is counted.

    `weights=None` scores the corpus once (every sentence once); returns arrays of shape (R,).
    `smooth`: BLEU's smoothing (`rvlf.text.metrics.smooth_method` of the tokenisation).
    """
    n = len(stats["rouge_l"])
    w = np.ones((1, n)) if weights is None else weights
    packed, cols = _pack(stats, metrics)
    sums = _unpack(w @ packed, cols)
    return {m: _from_sums(m, sums, w.sum(axis=1), smooth) for m in metrics}


def _from_sums(metric: str, sums: dict[str, np.ndarray], sizes, smooth: str = "none") -> np.ndarray:
    """One metric's corpus scores from summed statistics (`sizes`: sentences counted in each row)."""
    if metric == "bleu4":
        return bleu4_from_sums(sums["bleu"], smooth)
    if metric == "chrf":
        return chrf_from_sums(sums["chrf"], beta=chrf_metric("chrf").beta)
    return sums[metric] / sizes


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """(rows, N) resampled indices -> (rows, N) counts of each sentence in each resample."""
    rows = idx.shape[0]
    flat = (idx + (np.arange(rows) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.float64)


def _chunks(resamples: int, n: int) -> list[int]:
    step = max(1, _CHUNK_ELEMENTS // max(n, 1))
    return [min(step, resamples - i) for i in range(0, resamples, step)]


def bootstrap_scores(base: dict[str, np.ndarray], sys: dict[str, np.ndarray], rng: np.random.Generator,
                     resamples: int, metrics: Sequence[str] = METRICS,
                     smooth: str = "none") -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Scores of both systems on `resamples` bootstrap resamples (the same indices for both and for
    every metric): `({metric: (R,) baseline scores}, {metric: (R,) system scores})`.

    Each chunk of resamples is one (rows, N) count matrix times the (N, 2K) statistics of both systems."""
    n = len(base["rouge_l"])
    pb, cols = _pack(base, metrics)
    ps, _ = _pack(sys, metrics)
    both, k = np.hstack([pb, ps]), pb.shape[1]
    out_b: dict[str, list] = {m: [] for m in metrics}
    out_s: dict[str, list] = {m: [] for m in metrics}
    for rows in _chunks(resamples, n):
        sums = _counts(rng.choice(n, size=(rows, n), replace=True), n) @ both
        for out, part in ((out_b, sums[:, :k]), (out_s, sums[:, k:])):
            unpacked = _unpack(part, cols)
            for m in metrics:
                out[m].append(_from_sums(m, unpacked, n, smooth))
    return ({m: np.concatenate(v) for m, v in out_b.items()}, {m: np.concatenate(v) for m, v in out_s.items()})


def randomised_differences(base: dict[str, np.ndarray], sys: dict[str, np.ndarray], swaps: np.ndarray,
                           metrics: Sequence[str] = METRICS, smooth: str = "none") -> dict[str, np.ndarray]:
    """|score(A) - score(B)| of each trial, where pseudo-system A takes the baseline's sentence where
    `swaps` (R, N) is True and the system's elsewhere, B the opposite (sacrebleu's `--paired-ar`).

    One product per chunk: D = swaps @ (base - sys); A = sys total + D, B = base total - D."""
    pb, cols = _pack(base, metrics)
    ps, _ = _pack(sys, metrics)
    delta, tot_b, tot_s = pb - ps, pb.sum(axis=0), ps.sum(axis=0)
    out: dict[str, list] = {m: [] for m in metrics}
    n = swaps.shape[1]
    start = 0
    for rows in _chunks(len(swaps), n):
        d = swaps[start:start + rows].astype(np.float64) @ delta
        start += rows
        a, b = _unpack(tot_s + d, cols), _unpack(tot_b - d, cols)
        for m in metrics:
            out[m].append(np.abs(_from_sums(m, a, n, smooth) - _from_sums(m, b, n, smooth)))
    return {m: np.concatenate(v) for m, v in out.items()}


def ci95(values: np.ndarray) -> tuple[float, float]:
    """The 95% interval of resampled values: sorted values at R//40 and R - R//40 - 1 (sacrebleu's
    `estimate_ci` order statistics)."""
    v = np.sort(values)
    lo = len(v) // 40
    return float(v[lo]), float(v[len(v) - lo - 1])


def p_value(null_stats: np.ndarray, observed: float) -> float:
    """(count(null_stats >= observed) + 1) / (R + 1), with a relative tolerance of 1e-9 for ties."""
    tol = 1e-9 * max(1.0, abs(observed))
    return float((np.count_nonzero(null_stats >= observed - tol) + 1) / (len(null_stats) + 1))


def bootstrap_p_value(diffs: np.ndarray, observed: float) -> float:
    """Two-sided paired-bootstrap p-value: resampled differences `diffs` (R,) shifted to mean 0 (the
    null hypothesis) against the observed difference: (count(|d_b - mean d| >= |observed|) + 1) / (R + 1)."""
    return p_value(np.abs(diffs - diffs.mean()), abs(observed))


def paired_test(baseline: Sequence[str], system: Sequence[str], refs: Sequence[str], lang: str,
                resamples: int = 1000, seed: int = 0, test: str = "bs",
                metrics: Sequence[str] = METRICS, tokenize: str = SLRT) -> dict[str, dict[str, Any]]:
    """Compare two systems' translations of the same references (docs/evaluation.md, "Significance").

    Args:
        baseline, system: hypotheses, one per reference, in the same order (N sentences).
        refs: references. lang: "zh", "de" or "en" (the protocol's tokens).
        resamples: bootstrap resamples (`test="bs"`) or randomisation trials (`test="ar"`), >= 1.
        seed: seed of numpy's `default_rng`; a given seed gives identical output.
        test: "bs" (paired bootstrap) or "ar" (approximate randomisation; the interval still comes
            from R paired bootstrap resamples).
        metrics: a subset of `METRICS` to compute (all four by default; the resampling is the same).
        tokenize: the tokens of every metric (`rvlf.text.metrics.TOKENIZE`; default `slrt`, the paper's).

    Returns:
        `{metric: {"baseline", "system", "diff", "ci95": [lo, hi], "p_value"}}` for `metrics`
        (bleu4, rouge_l, chrf, reward; scores 0-100, diff = system - baseline, ci95 the 95% interval
        of the difference, p_value two-sided in (0, 1]).

    Raises:
        RvlfError: different numbers of sentences, no sentences, unknown language, test or metric,
            resamples < 1.
    """
    check_lang(lang)
    if tokenize != SLRT:
        check_tokenize(tokenize)
    smooth = smooth_method(tokenize)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise RvlfError(f"unknown metric {unknown[0] if unknown else None!r} (expected some of {', '.join(METRICS)})")
    metrics = tuple(metrics)
    if test not in TESTS:
        raise RvlfError(f"unknown test {test!r} (expected one of {', '.join(TESTS)})")
    if not len(baseline) == len(system) == len(refs):
        raise RvlfError(f"baseline has {len(baseline)} sentences, system {len(system)}, references {len(refs)}")
    if not refs:
        raise RvlfError("no sentences to compare")
    if int(resamples) < 1:
        raise RvlfError(f"resamples must be at least 1, got {resamples}")
    resamples = int(resamples)
    prepared = References(refs, lang, chrf=("chrf",) if "chrf" in metrics else (), tokenize=tokenize)
    base, sys = system_statistics(baseline, prepared, metrics), system_statistics(system, prepared, metrics)
    score_b = {m: float(v[0]) for m, v in corpus_metrics(base, None, metrics, smooth).items()}
    score_s = {m: float(v[0]) for m, v in corpus_metrics(sys, None, metrics, smooth).items()}
    rng = np.random.default_rng(seed)
    if test == "ar":
        swaps = rng.integers(2, size=(resamples, len(refs)), dtype=bool)
        trials = randomised_differences(base, sys, swaps, metrics, smooth)
    bs_b, bs_s = bootstrap_scores(base, sys, rng, resamples, metrics, smooth)
    out = {}
    for m in metrics:
        observed = score_s[m] - score_b[m]
        diffs = bs_s[m] - bs_b[m]
        if test == "bs":
            p = bootstrap_p_value(diffs, observed)
        else:
            p = p_value(trials[m], abs(observed))
        lo, hi = ci95(diffs)
        out[m] = {"baseline": score_b[m], "system": score_s[m], "diff": observed, "ci95": [lo, hi], "p_value": p}
    return out


def significant(result: dict[str, Any], alpha: float = 0.05) -> bool:
    """True when one metric's `paired_test` entry has p < alpha."""
    return result["p_value"] < alpha


def format_diff(result: dict[str, Any], alpha: float = 0.05) -> str:
    """`+0.45 [-0.80, +1.70]` and ` (n.s.)` when p >= alpha: one metric's difference for a table cell."""
    lo, hi = result["ci95"]
    text = f"{result['diff']:+.2f} [{lo:+.2f}, {hi:+.2f}]"
    return text if significant(result, alpha) else text + " (n.s.)"
