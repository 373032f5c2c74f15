"""8. Significance tests: `rvlf.text.significance` against sacrebleu's `--paired-bs` / `--paired-ar`.
See benchmarks/README.md."""

from __future__ import annotations

from benchmarks.harness import Row, Section, Sizes, timed


def _corpus(n: int):
    """(refs, baseline, system): synthetic English, the system a little better than the baseline."""
    import random

    rnd = random.Random(0)
    vocab = [f"w{i}" for i in range(400)]
    refs, base, sys_ = [], [], []
    for _ in range(n):
        ref = rnd.choices(vocab, k=rnd.randint(5, 25))
        a = [w if rnd.random() < 0.6 else rnd.choice(vocab) for w in ref]
        b = [w if rnd.random() < 0.65 else rnd.choice(vocab) for w in ref]
        refs.append(" ".join(ref))
        base.append(" ".join(a[: max(1, len(a) + rnd.randint(-3, 3))]))
        sys_.append(" ".join(b[: max(1, len(b) + rnd.randint(-3, 3))]))
    return refs, base, sys_


def run(sizes: Sizes, ctx: dict) -> Section:
    import logging

    import numpy as np
    from sacrebleu.metrics.bleu import BLEU
    from sacrebleu.significance import PairedTest, _bootstrap_resample

    from rvlf.text import significance as sig
    from rvlf.text.metrics import References

    logging.getLogger("sacrebleu").setLevel(logging.WARNING)
    sec = Section("8. Significance tests: rvlf.text.significance against sacrebleu's paired tests")
    n, r = (500, 200) if sizes.quick else (2000, 1000)
    refs, base, sys_ = _corpus(n)
    seed = 12345  # sacrebleu's default SACREBLEU_SEED: both draw the same resamples

    def rvlf_all(test: str = "bs"):
        return sig.paired_test(base, sys_, refs, "en", resamples=r, seed=seed, test=test)

    def rvlf_bleu(test: str = "bs"):
        return sig.paired_test(base, sys_, refs, "en", resamples=r, seed=seed, test=test, metrics=("bleu4",))

    def sacrebleu_test(test: str = "bs"):
        metrics = {"BLEU": BLEU(tokenize="none", smooth_method="none")}
        return PairedTest([("baseline", base), ("system", sys_)], metrics, [refs], test_type=test, n_samples=r,
                          n_ar_confidence=r if test == "ar" else -1)()

    # the same numbers (a sanity check, not a test): sacrebleu's system mean and 95% half-width over
    # its resamples against rvlf's resampled BLEU-4 with the same seed
    ours = rvlf_all()
    _, theirs = sacrebleu_test()
    prepared = References(refs, "en", chrf=())
    s_base = sig.system_statistics(base, prepared, ("bleu4",))
    s_sys = sig.system_statistics(sys_, prepared, ("bleu4",))
    _, bs_sys = sig.bootstrap_scores(s_base, s_sys, np.random.default_rng(seed), r, ("bleu4",))
    lo, hi = sig.ci95(bs_sys["bleu4"])
    mean_gap = abs(bs_sys["bleu4"].mean() - theirs["BLEU"][1].mean)
    half_gap = abs((hi - lo) / 2 - theirs["BLEU"][1].ci)

    # the resampling alone, statistics already extracted: rvlf's one numpy pass (both systems) against
    # sacrebleu's loop of one `compute_bleu` a resample (`_bootstrap_resample`, once per system)
    s_all = {k: sig.system_statistics(h, References(refs, "en", chrf=("chrf",))) for k, h in (("b", base), ("s", sys_))}
    sb_metric = BLEU(tokenize="none", smooth_method="none")
    sb_stats = [sb_metric._extract_corpus_statistics(h, [refs]) for h in (base, sys_)]

    def rvlf_resample(metrics=sig.METRICS):
        return sig.bootstrap_scores(s_all["b"], s_all["s"], np.random.default_rng(seed), r, metrics)

    def sacrebleu_resample():
        return [_bootstrap_resample(st, sb_metric, r) for st in sb_stats]

    t_rs_all = timed(rvlf_resample, sizes)
    t_rs_bleu = timed(lambda: rvlf_resample(("bleu4",)), sizes)
    t_rs_sb = timed(sacrebleu_resample, sizes)
    t_all = timed(rvlf_all, sizes)
    t_bleu = timed(rvlf_bleu, sizes)
    t_sb = timed(sacrebleu_test, sizes)
    t_all_ar = timed(lambda: rvlf_all("ar"), sizes)
    t_bleu_ar = timed(lambda: rvlf_bleu("ar"), sizes)
    t_sb_ar = timed(lambda: sacrebleu_test("ar"), sizes)
    work = f"{n:,} pairs x {r:,} resamples"
    sec.rows += [
        Row(f"rvlf paired bootstrap, 4 metrics (BLEU-4, ROUGE-L, chrF, reward), {work}", t_all, "s",
            "sentence statistics included"),
        Row(f"rvlf paired bootstrap, BLEU-4 only, {work}", t_bleu, "s"),
        Row(f"sacrebleu PairedTest(test_type='bs'), BLEU only, {work}", t_sb, "s", "= sacrebleu --paired-bs"),
        Row("speed-up, same BLEU work (sacrebleu / rvlf BLEU-4 only)", [a / b for a, b in zip(t_sb, t_bleu)], "x",
            "per run pair"),
        Row("speed-up, sacrebleu's BLEU / rvlf's four metrics", [a / b for a, b in zip(t_sb, t_all)], "x",
            "per run pair"),
        Row(f"resampling only, rvlf, 4 metrics, both systems, {work}", t_rs_all, "s",
            "statistics extracted beforehand"),
        Row(f"resampling only, rvlf, BLEU-4, both systems, {work}", t_rs_bleu, "s"),
        Row(f"resampling only, sacrebleu _bootstrap_resample, BLEU, both systems, {work}", t_rs_sb, "s",
            "its loop inside --paired-bs"),
        Row("speed-up of the resampling, same BLEU work (sacrebleu / rvlf BLEU-4)",
            [a / b for a, b in zip(t_rs_sb, t_rs_bleu)], "x", "per run pair"),
        Row(f"rvlf approximate randomisation, 4 metrics, {n:,} pairs x {r:,} trials (+ bootstrap interval)",
            t_all_ar, "s"),
        Row(f"rvlf approximate randomisation, BLEU-4 only, {n:,} pairs x {r:,} trials (+ interval)", t_bleu_ar, "s"),
        Row(f"sacrebleu PairedTest(test_type='ar', n_ar_confidence={r}), BLEU only", t_sb_ar, "s",
            "= sacrebleu --paired-ar with its interval"),
        Row("speed-up, same AR work (sacrebleu / rvlf BLEU-4 only)", [a / b for a, b in zip(t_sb_ar, t_bleu_ar)],
            "x", "per run pair"),
    ]
    b4 = ours["bleu4"]
    sec.notes.append(
        f"{n:,} synthetic English sentence pairs (5-25 words from a 400-word vocabulary; baseline ~60% and system "
        f"~65% of the reference words) and {r:,} resamples or trials, seed {seed} for both. rvlf: "
        "`paired_test(base, system, refs, 'en', resamples, seed, test)` end to end (protocol tokens, per-sentence "
        "BLEU / chrF statistics and ROUGE-L / reward scores, then one numpy pass over all resamples, the same "
        "resampled sentences for every metric). sacrebleu: `PairedTest([...], {'BLEU': BLEU(tokenize='none', "
        "smooth_method='none')}, [refs], test_type, n_samples)()`, what `sacrebleu --paired-bs` / `--paired-ar` "
        "run: its own statistics, then one `compute_bleu` call a resample and system (it also resamples the "
        "baseline once more for its interval). "
        f"The same numbers: BLEU-4 {b4['baseline']:.2f} -> {b4['system']:.2f}, diff {b4['diff']:+.2f} "
        f"[{b4['ci95'][0]:+.2f}, {b4['ci95'][1]:+.2f}], p {b4['p_value']:.4f} (sacrebleu p "
        f"{theirs['BLEU'][1].p_value:.4f}); sacrebleu's mean and 95% half-width of the system's resampled BLEU "
        f"differ from rvlf's on the same resamples by {mean_gap:.1g} and {half_gap:.1g} (float32 in sacrebleu). "
        "End to end, most of the time of both is the per-sentence statistics (n-gram counting in Python; "
        "for chrF sacrebleu's own extraction); the resampling rows show the vectorised part alone.")
    return sec
