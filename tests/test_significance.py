"""Paired significance tests (`rvlf.text.significance`) and `rvlf compare`."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.chrf import CHRF

from rvlf.cli import main
from rvlf.errors import RvlfError
from rvlf.rl.rewards import translation_reward
from rvlf.text import significance as sig
from rvlf.text.metrics import References, corpus_scores, tokenize

VOCAB_EN = ("the a cat dog sat on mat ran house big small red green rain sun snow wind north south "
            "tomorrow today night morning cold warm").split()
VOCAB_ZH = list("我你他的是在不了有人这中大为上个国以要时来们生到天气明后雨雪风")


def corpus(n: int, lang: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    vocab = VOCAB_ZH if lang == "zh" else VOCAB_EN
    sep = "" if lang == "zh" else " "
    return [sep.join(rng.choices(vocab, k=rng.randint(4, 16))) for _ in range(n)]


def with_errors(refs: list[str], lang: str, rate: float, seed: int) -> tuple[list[str], list[int]]:
    """Each sentence gets, with probability `rate`, one substituted and one dropped token; returns
    the hypotheses and the indices of the sentences with errors."""
    rng = random.Random(seed)
    vocab = VOCAB_ZH if lang == "zh" else VOCAB_EN
    sep = "" if lang == "zh" else " "
    hyps, wrong = [], []
    for i, r in enumerate(refs):
        toks = tokenize(r, lang)
        if rng.random() < rate:
            j = rng.randrange(len(toks))
            toks[j] = rng.choice([v for v in vocab if v != toks[j]])
            del toks[rng.randrange(len(toks))]
            wrong.append(i)
        hyps.append(sep.join(toks))
    return hyps, wrong


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("test", ["bs", "ar"])
def test_a_system_against_itself(lang, test):
    refs = corpus(120, lang, seed=1)
    hyps, _ = with_errors(refs, lang, 0.6, seed=2)
    res = sig.paired_test(hyps, hyps, refs, lang, resamples=300, seed=0, test=test)
    assert set(res) == set(sig.METRICS)
    for m, r in res.items():
        assert r["diff"] == 0.0 and r["baseline"] == r["system"]
        assert r["ci95"][0] <= 0.0 <= r["ci95"][1]
        assert r["p_value"] == 1.0


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("test", ["bs", "ar"])
def test_fixing_half_of_the_baselines_errors_is_significant_on_500_sentences(lang, test):
    refs = corpus(500, lang, seed=3)
    baseline, wrong = with_errors(refs, lang, 0.3, seed=4)
    fixed = set(random.Random(5).sample(wrong, len(wrong) // 2))
    system = [refs[i] if i in fixed else h for i, h in enumerate(baseline)]
    res = sig.paired_test(baseline, system, refs, lang, resamples=1000, seed=0, test=test)
    for m, r in res.items():
        assert r["diff"] > 0, m
        assert r["p_value"] < 0.05, (m, r)
        assert 0 < r["ci95"][0] < r["diff"] < r["ci95"][1], (m, r)
    # swapping the roles flips the difference and its interval, not the verdict
    back = sig.paired_test(system, baseline, refs, lang, resamples=1000, seed=0, test=test)
    for m in sig.METRICS:
        assert back[m]["diff"] == pytest.approx(-res[m]["diff"])
        assert back[m]["ci95"] == pytest.approx([-res[m]["ci95"][1], -res[m]["ci95"][0]])
        assert back[m]["p_value"] < 0.05


def test_tests_are_calibrated_under_the_null_hypothesis():
    """1,000 pairs of equally good systems (exchangeable sentence scores, 150 sentences): p < 0.05 for
    about 5% of them with either test. (sacrebleu's paired-bs statistic, |d_b| - mean|d_b| > |d|,
    gives about 10% here: the reason rvlf centres the signed differences, docs/evaluation.md.)"""
    rng = np.random.default_rng(0)
    n, reps = 150, 1000
    called = {"bs": 0, "ar": 0}
    for _ in range(reps):
        a, b = {"rouge_l": 100 * rng.random(n)}, {"rouge_l": 100 * rng.random(n)}
        observed = b["rouge_l"].mean() - a["rouge_l"].mean()
        bs_a, bs_b = sig.bootstrap_scores(a, b, rng, 300, metrics=("rouge_l",))
        called["bs"] += sig.bootstrap_p_value(bs_b["rouge_l"] - bs_a["rouge_l"], observed) < 0.05
        swaps = rng.integers(2, size=(300, n), dtype=bool)
        trials = sig.randomised_differences(a, b, swaps, metrics=("rouge_l",))
        called["ar"] += sig.p_value(trials["rouge_l"], abs(observed)) < 0.05
    assert 0.03 <= called["bs"] / reps <= 0.07, called
    assert 0.03 <= called["ar"] / reps <= 0.07, called


def test_a_fixed_seed_gives_identical_output_and_another_seed_another_interval():
    refs = corpus(200, "zh", seed=6)
    a, _ = with_errors(refs, "zh", 0.5, seed=7)
    b, _ = with_errors(refs, "zh", 0.4, seed=8)
    for test in ("bs", "ar"):
        first = sig.paired_test(a, b, refs, "zh", resamples=500, seed=11, test=test)
        assert sig.paired_test(a, b, refs, "zh", resamples=500, seed=11, test=test) == first
        other = sig.paired_test(a, b, refs, "zh", resamples=500, seed=12, test=test)
        assert other["bleu4"]["ci95"] != first["bleu4"]["ci95"]
        assert other["bleu4"]["diff"] == first["bleu4"]["diff"]


def test_scores_are_the_evaluation_protocols():
    refs = corpus(150, "en", seed=9)
    a, _ = with_errors(refs, "en", 0.5, seed=10)
    b, _ = with_errors(refs, "en", 0.3, seed=11)
    res = sig.paired_test(a, b, refs, "en", resamples=50, seed=0)
    for hyps, side in ((a, "baseline"), (b, "system")):
        c = corpus_scores(hyps, refs, "en")
        assert res["bleu4"][side] == pytest.approx(c["bleu4"], rel=1e-12)
        assert res["rouge_l"][side] == pytest.approx(c["rouge_l"], rel=1e-12)
        assert res["chrf"][side] == pytest.approx(c["chrf"], rel=1e-12)
        assert res["reward"][side] == pytest.approx(100 * np.mean(translation_reward(hyps, refs, "en")), rel=1e-12)


def test_sentence_rewards_are_translation_reward():
    refs = corpus(200, "en", seed=24) + ["hallo", "guten abend", "a b c", "a b c d"] * 5
    hyps, _ = with_errors(refs, "en", 0.6, seed=25)
    hyps[-8:] = ["", "\u200b", "guten", "a b c d e"] * 2  # empty / invisible-only / short
    hyps[:2] = ["", "\ufeff\u00ad"]  # no tokens against long references
    stats = sig.system_statistics(hyps, References(refs, "en", chrf=()), ("reward",))
    assert stats["reward"] == pytest.approx(100 * np.asarray(translation_reward(hyps, refs, "en")), rel=1e-12, abs=1e-12)


def test_vectorised_bleu_and_chrf_equal_sacrebleu_on_summed_statistics():
    rng = np.random.default_rng(0)
    refs = corpus(60, "en", seed=12)
    hyps, _ = with_errors(refs, "en", 0.7, seed=13)
    hyps[:3] = ["", "the", "the cat"]  # no 4-grams / empty: BLEU 0 without smoothing
    stats = sig.system_statistics(hyps, References(refs, "en", chrf=("chrf",)))
    w = rng.integers(0, 3, size=(200, len(refs))).astype(float)
    w[:5, 3:] = 0  # resamples of only the short sentences
    bleu, chrf = sig.bleu4_from_sums(w @ stats["bleu"]), sig.chrf_from_sums(w @ stats["chrf"])
    for row, b, c in zip(w @ stats["bleu"], bleu, chrf):
        s = [int(x) for x in row]
        expected = BLEU.compute_bleu(s[2:6], s[6:10], s[0], s[1], smooth_method="none").score
        assert b == pytest.approx(expected, rel=1e-12, abs=1e-12)
    for row, c in zip(w @ stats["chrf"], chrf):
        assert c == pytest.approx(CHRF()._compute_f_score(list(row)), rel=1e-12, abs=1e-12)
    assert (bleu[:5] == 0).all()


def test_bootstrap_resamples_are_sacrebleus_paired_bs_resamples(monkeypatch):
    """Same seed, same resampled sentences, same BLEU / chrF on each resample as sacrebleu's
    `--paired-bs` (its mean and 95% half-width of the system's resampled scores)."""
    from sacrebleu.significance import PairedTest

    monkeypatch.setenv("SACREBLEU_SEED", "12345")
    refs = corpus(300, "en", seed=14)
    a, _ = with_errors(refs, "en", 0.5, seed=15)
    b, _ = with_errors(refs, "en", 0.3, seed=16)
    prepared = References(refs, "en", chrf=("chrf",))
    sa, sb = sig.system_statistics(a, prepared), sig.system_statistics(b, prepared)
    _, bs_sys = sig.bootstrap_scores(sa, sb, np.random.default_rng(12345), 1000)
    metrics = {"BLEU": BLEU(tokenize="none", smooth_method="none"), "chrF2": CHRF()}
    _, scores = PairedTest([("a", a), ("b", b)], metrics, [refs], test_type="bs", n_samples=1000)()
    for name, key in (("BLEU", "bleu4"), ("chrF2", "chrf")):
        mean, half = scores[name][1].mean, scores[name][1].ci
        assert bs_sys[key].mean() == pytest.approx(mean, rel=1e-5)
        lo, hi = sig.ci95(bs_sys[key])
        assert (hi - lo) / 2 == pytest.approx(half, rel=1e-4)


def test_ar_p_value_is_sacrebleus_paired_ar_when_there_are_no_ties(monkeypatch):
    from sacrebleu.significance import PairedTest

    monkeypatch.setenv("SACREBLEU_SEED", "7")
    refs = corpus(200, "en", seed=17)
    a, _ = with_errors(refs, "en", 0.5, seed=18)
    b, _ = with_errors(refs, "en", 0.45, seed=19)
    ours = sig.paired_test(a, b, refs, "en", resamples=500, seed=7, test="ar", metrics=("bleu4", "chrf"))
    metrics = {"BLEU": BLEU(tokenize="none", smooth_method="none"), "chrF2": CHRF()}
    _, scores = PairedTest([("a", a), ("b", b)], metrics, [refs], test_type="ar", n_samples=500)()
    assert 0.05 < ours["bleu4"]["p_value"] < 1  # a case where the count matters
    assert ours["bleu4"]["p_value"] == pytest.approx(scores["BLEU"][1].p_value)
    assert ours["chrf"]["p_value"] == pytest.approx(scores["chrF2"][1].p_value)


def test_bad_arguments_are_one_line_errors():
    refs = corpus(5, "en", seed=0)
    with pytest.raises(RvlfError, match="baseline has 4 sentences, system 5, references 5"):
        sig.paired_test(refs[:4], refs, refs, "en")
    with pytest.raises(RvlfError, match="unknown test 't'"):
        sig.paired_test(refs, refs, refs, "en", test="t")
    with pytest.raises(RvlfError, match="resamples must be at least 1"):
        sig.paired_test(refs, refs, refs, "en", resamples=0)
    with pytest.raises(RvlfError, match="unknown metric 'bleu'"):
        sig.paired_test(refs, refs, refs, "en", metrics=("bleu",))
    with pytest.raises(RvlfError, match="no sentences"):
        sig.paired_test([], [], [], "en")
    with pytest.raises(RvlfError, match="unknown language"):
        sig.paired_test(refs, refs, refs, "f r")


def test_format_diff_marks_what_is_not_significant():
    assert sig.format_diff({"diff": 0.45, "ci95": [-0.8, 1.7], "p_value": 0.4}) == "+0.45 [-0.80, +1.70] (n.s.)"
    assert sig.format_diff({"diff": 2.1, "ci95": [0.9, 3.3], "p_value": 0.001}) == "+2.10 [+0.90, +3.30]"


# --- rvlf compare ---------------------------------------------------------------------------------

def _write(path, lines, bom=False):
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\n".join(lines) + "\n").encode())
    return str(path)


def _one_json(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return json.loads(out[0])


def test_compare_prints_one_json_object(tmp_path, capsys):
    refs = corpus(500, "zh", seed=20)
    base, wrong = with_errors(refs, "zh", 0.3, seed=21)
    fixed = set(wrong[::2])
    system = [refs[i] if i in fixed else h for i, h in enumerate(base)]
    r, a, b = _write(tmp_path / "ref.txt", refs), _write(tmp_path / "a.txt", base, bom=True), _write(tmp_path / "b.txt", system)
    argv = ["compare", "--baseline", a, "--system", b, "--ref", r, "--lang", "zh", "--resamples", "500", "--seed", "3",
            "--json"]
    assert main(argv) == 0
    out = _one_json(capsys)
    assert set(out) == {*sig.METRICS, "settings"}
    for m in sig.METRICS:
        assert set(out[m]) == {"baseline", "system", "diff", "ci95", "p_value"}
        assert out[m]["p_value"] < 0.05 and out[m]["ci95"][0] > 0
    assert out["settings"] | {"baseline": None, "system": None, "ref": None} == {
        "test": "bs", "test_name": "paired bootstrap resampling", "resamples": 500, "seed": 3, "sentences": 500,
        "lang": "zh", "baseline": None, "system": None, "ref": None, "tokenize": "slrt",
        "signature": "slrt:zh(characters)|nrefs:1|case:mixed|eff:no|tok:none|smooth:none|version:2.6.0"}
    assert out["bleu4"]["baseline"] == round(corpus_scores(base, refs, "zh")["bleu4"], 4)
    assert main(argv) == 0
    assert _one_json(capsys) == out  # same seed, same output

    assert main(["compare", "--baseline", b, "--system", b, "--ref", r, "--lang", "zh", "--test", "ar",
                 "--resamples", "200", "--json"]) == 0
    same = _one_json(capsys)
    assert same["settings"]["test"] == "ar"
    assert all(same[m]["diff"] == 0 and same[m]["p_value"] == 1.0 and same[m]["ci95"] == [0.0, 0.0]
               for m in sig.METRICS)


def test_compare_two_runs_translation_files(tmp_path, capsys):
    refs = corpus(40, "en", seed=22)
    a, _ = with_errors(refs, "en", 0.5, seed=23)
    ids = [f"s{i:03d}" for i in range(len(refs))]
    ta = _write(tmp_path / "a.tsv", [f"{i}\t{h}\t{r}" for i, h, r in zip(ids, a, refs)])
    # the other run wrote its lines in another order: pairs go by id
    tb = _write(tmp_path / "b.tsv", [f"{i}\t{r}\t{r}" for i, r in reversed(list(zip(ids, refs)))])
    assert main(["compare", "--baseline", ta, "--system", tb, "--lang", "en", "--resamples", "100", "--json"]) == 0
    out = _one_json(capsys)
    assert out["bleu4"]["system"] == pytest.approx(100.0)
    assert out["bleu4"]["baseline"] == round(corpus_scores(a, refs, "en")["bleu4"], 4)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_compare_errors_are_one_line(tmp_path, capsys):
    r = _write(tmp_path / "ref.txt", ["a b", "c d"])
    a = _write(tmp_path / "a.txt", ["a b"])
    assert main(["compare", "--baseline", a, "--system", r, "--ref", r, "--lang", "en"]) == 2
    assert "a.txt has 1 sentences but" in _one_error_line(capsys)
    assert main(["compare", "--baseline", a, "--system", a, "--lang", "en"]) == 2
    assert "--ref is needed" in _one_error_line(capsys)
    assert main(["compare", "--baseline", r, "--system", r, "--ref", r, "--lang", "en", "--resamples", "0"]) == 2
    assert "resamples must be at least 1" in _one_error_line(capsys)
    bad = _write(tmp_path / "bad.tsv", ["x\ty"])
    assert main(["compare", "--baseline", bad, "--system", bad, "--lang", "en"]) == 2
    assert "bad.tsv:1: expected id<TAB>hypothesis<TAB>reference, found 2 field(s)" in _one_error_line(capsys)
    t1 = _write(tmp_path / "t1.tsv", ["s1\ta\ta", "s2\tb\tb"])
    t2 = _write(tmp_path / "t2.tsv", ["s1\ta\ta", "s3\tb\tb"])
    assert main(["compare", "--baseline", t1, "--system", t2, "--lang", "en"]) == 2
    assert "translated different sentences" in _one_error_line(capsys)
    t3 = _write(tmp_path / "t3.tsv", ["s1\ta\ta", "s2\tb\tc"])
    assert main(["compare", "--baseline", t1, "--system", t3, "--lang", "en"]) == 2
    assert "t3.tsv: id 's2' has another reference" in _one_error_line(capsys)
