"""6. Scoring sentence pairs: `rvlf.text.metrics` against sacrebleu alone. See benchmarks/README.md."""

from __future__ import annotations

from benchmarks.harness import Row, Section, Sizes, rates, timed


def run(sizes: Sizes, ctx: dict) -> Section:
    import random

    from sacrebleu.metrics.bleu import BLEU

    from rvlf.text.metrics import batch_sentence_scores, corpus_scores

    sec = Section("6. Scoring sentence pairs: rvlf.text.metrics against sacrebleu")
    n = 1000 if sizes.quick else 10_000
    rnd = random.Random(0)
    vocab = [f"w{i}" for i in range(400)]
    refs, hyps = [], []
    for _ in range(n):
        ref = rnd.choices(vocab, k=rnd.randint(5, 25))
        hyp = [w if rnd.random() < 0.6 else rnd.choice(vocab) for w in ref]
        hyp = hyp[: max(1, len(hyp) + rnd.randint(-3, 3))]
        refs.append(" ".join(ref))
        hyps.append(" ".join(hyp))

    def rvlf_scores():
        # chrF / chrF++ off: the BLEU + ROUGE-L work this item has always compared with sacrebleu's BLEU
        return batch_sentence_scores(hyps, refs, "en", chrf=False), corpus_scores(hyps, refs, "en", chrf=False)

    sent_bleus = [BLEU(tokenize="none", smooth_method="none", effective_order=True, max_ngram_order=m) for m in range(1, 5)]
    corp_bleus = [BLEU(tokenize="none", smooth_method="none", max_ngram_order=m) for m in range(1, 5)]

    def sacrebleu_all():
        sent = [[b.sentence_score(h, [r]).score for b in sent_bleus] for h, r in zip(hyps, refs)]
        corp = [b.corpus_score(hyps, [refs]).score for b in corp_bleus]
        return sent, corp

    def sacrebleu_bleu4():
        b = sent_bleus[3]
        return [b.sentence_score(h, [r]).score for h, r in zip(hyps, refs)]

    # the same numbers (a sanity check, not a test)
    ours, corpus = rvlf_scores()
    theirs, theirs_corpus = sacrebleu_all()
    worst = max(abs(o[f"bleu{m + 1}"] - t[m]) for o, t in zip(ours, theirs) for m in range(4))
    worst = max([worst] + [abs(corpus[f"bleu{m + 1}"] - theirs_corpus[m]) for m in range(4)])

    sr = timed(rvlf_scores, sizes)
    sa = timed(sacrebleu_all, sizes)
    s4 = timed(sacrebleu_bleu4, sizes)
    sec.rows.append(Row(f"rvlf: batch_sentence_scores + corpus_scores, {n:,} pairs", rates(n, sr), "pairs/s",
                        "BLEU-1..4 + ROUGE-L per sentence, and corpus"))
    sec.rows.append(Row("sacrebleu: sentence_score x 4 orders + corpus_score x 4", rates(n, sa), "pairs/s",
                        "BLEU-1..4 only (no ROUGE-L)"))
    sec.rows.append(Row("sacrebleu: sentence_score, BLEU-4 only", rates(n, s4), "pairs/s"))
    sec.rows.append(Row("speed-up, same BLEU work (sacrebleu / rvlf time)", [a / b for a, b in zip(sa, sr)], "x", "per run pair"))
    sec.rows.append(Row("speed-up against sacrebleu's BLEU-4 alone", [a / b for a, b in zip(s4, sr)], "x", "per run pair"))
    sec.notes.append(
        f"{n:,} synthetic English pairs (5-25 words from a 400-word vocabulary, hypotheses ~60% overlapping). "
        "sacrebleu: `BLEU(tokenize='none', smooth_method='none', effective_order=True, max_ngram_order=m)."
        "sentence_score(h, [r])` per pair for m = 1..4 and `corpus_score` for m = 1..4. rvlf computes the "
        "n-gram statistics once per pair and derives BLEU-1..4 from them (and ROUGE-L on top); its chrF and "
        "chrF++ (`chrf=True`, the default) are left out here, they are sacrebleu's own code. "
        f"Largest difference between the two BLEU values over all pairs and orders: {worst:.2g}.")
    return sec
