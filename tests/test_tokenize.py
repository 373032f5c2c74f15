"""`--tokenize`: sacrebleu's tokenisations beside the paper's protocol, signatures, and `rvlf compare`'s
alignment by id (issue #30, report case C15). Texts: the real dataset annotations of the fixtures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sacrebleu
from sacrebleu.metrics.bleu import BLEU

from rvlf.cli import main
from rvlf.errors import RvlfError
from rvlf.text import metrics
from rvlf.text.metrics import SACREBLEU_TOKENIZE, corpus_scores, signature, standard_bleu

KINDS = {"en": (("how2sign", "how2sign"), ("openasl", "openasl")), "de": (("phoenix", "phoenix2014t"),),
         "zh": (("csl-daily", "csl_daily"),)}


def system_output(refs: list[str], lang: str) -> list[str]:
    """A deterministic imperfect "system": drops last tokens, reorders, lower-cases and strips punctuation."""
    out = []
    for i, r in enumerate(refs):
        w = list(r) if lang == "zh" else r.split()
        if i % 3 == 0 and len(w) > 2:
            w = w[:-1]
        if i % 3 == 1:
            w = w[::-1][:3] + w[3:]
        if i % 4 == 2:
            w = [x.lower().strip(".,!?") for x in w]
        out.append(("" if lang == "zh" else " ").join(w))
    return out


@pytest.fixture(scope="module")
def real_texts(fixtures_dir):
    """{lang: (hyps, refs)}: every text of the real-format fixtures of that language."""
    from rvlf.data.readers import read_dataset

    out = {}
    for lang, kinds in KINDS.items():
        refs = [s.text for kind, root in kinds for s in read_dataset(kind, fixtures_dir / "real_formats" / root)]
        out[lang] = (system_output(refs, lang), refs)
    return out


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("tok", SACREBLEU_TOKENIZE)
@pytest.mark.parametrize("lang", ["en", "de", "zh"])
def test_each_tokenisation_equals_sacrebleu_corpus_bleu(real_texts, lang, tok):
    hyps, refs = real_texts[lang]
    ours = corpus_scores(hyps, refs, lang, tokenize=tok)
    for n in range(1, 5):
        theirs = BLEU(tokenize=tok, max_ngram_order=n).corpus_score(hyps, [refs]).score
        assert abs(ours[f"bleu{n}"] - theirs) < 1e-6, (n, ours, theirs)
    assert abs(ours["chrf"] - sacrebleu.corpus_chrf(hyps, [refs]).score) < 1e-6
    assert abs(ours["chrf++"] - sacrebleu.corpus_chrf(hyps, [refs], word_order=2).score) < 1e-6
    assert abs(sacrebleu.corpus_bleu(hyps, [refs], tokenize=tok).score - ours["bleu4"]) < 1e-6  # the functional API


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_slrt_equals_sacrebleu_on_the_protocol_tokens(real_texts, lang):
    hyps, refs = real_texts[lang]
    ph = [metrics.protocol_text(h, lang) for h in hyps]
    pr = [metrics.protocol_text(r, lang) for r in refs]
    ours = corpus_scores(hyps, refs, lang)
    for n in range(1, 5):
        theirs = BLEU(tokenize="none", smooth_method="none", max_ngram_order=n).corpus_score(ph, [pr]).score
        assert abs(ours[f"bleu{n}"] - theirs) < 1e-6


def test_the_tokenisations_differ_on_real_english_and_match_on_chinese(real_texts):
    hyps, refs = real_texts["en"]
    slrt, t13a = corpus_scores(hyps, refs, "en")["bleu4"], corpus_scores(hyps, refs, "en", tokenize="13a")["bleu4"]
    assert abs(slrt - t13a) > 1  # punctuation glued to words ("soft.\"") counts against whitespace tokens
    hyps, refs = real_texts["zh"]
    assert corpus_scores(hyps, refs, "zh")["bleu4"] == pytest.approx(corpus_scores(hyps, refs, "zh", tokenize="char")["bleu4"])


def test_sentence_bleu_equals_sacrebleu_sentence_bleu(real_texts):
    hyps, refs = real_texts["en"]
    for h, r in zip(hyps, refs):
        ours = metrics.sentence_scores(h, r, "en", tokenize="13a")["bleu4"]
        assert abs(ours - sacrebleu.sentence_bleu(h, [r], tokenize="13a").score) < 1e-6


# the `rvlf score` output of the default protocol before --tokenize existed (same inputs): byte for byte
GOLDEN = {
    "en": '{"bleu1": 71.8789, "bleu2": 69.7499, "bleu3": 66.7012, "bleu4": 63.0703, "rouge_l": 70.2186, '
          '"chrf": 78.3481, "chrf++": 76.8439}\n',
}


def test_default_score_output_is_byte_identical(real_texts, tmp_path, capsys):
    hyps, refs = real_texts["en"]
    h, r = _write(tmp_path / "hyp.txt", hyps), _write(tmp_path / "ref.txt", refs)
    assert main(["score", "--hyp", h, "--ref", r, "--lang", "en"]) == 0
    cap = capsys.readouterr()
    assert cap.out == GOLDEN["en"]
    assert cap.out == main_score_explicit(h, r, capsys)  # --tokenize slrt is the default
    assert cap.err.strip() == "signature: slrt:en(whitespace)|nrefs:1|case:mixed|eff:no|tok:none|smooth:none|version:2.6.0"


# sha256 of `rvlf score` stdout before --tokenize existed (commit b1a5ba3), corpus and --sentence, on these inputs
GOLDEN_SHA256 = {
    ("en", False): "f106e4ac7639d32a070531aa295b0b993aa32e57723125cb04d9da92c40c5c49",
    ("en", True): "5186e571e745292a540fd7adcb31c75d512caa2e09e5a92746f5ed0dbb1303cb",
    ("de", False): "85bd4bbf6552f93468e311bbc9225a953679360960271e8e3fabb12eed5d76ac",
    ("de", True): "d9278eba04a4b7f3697791b254452f9fc1a046cd7cc6c7bad7864dc1ab0d3541",
    ("zh", False): "5ac08169c9f74020d7e8e741b6f5319fbede3d4c8a3b9c6f3ae8073151ff03c7",
    ("zh", True): "b38ed11800a2aa03ab35ce971bf4039943bf29a6c3d2c1cda078219c06341289",
}


@pytest.mark.parametrize("lang", ["en", "de", "zh"])
def test_default_scores_are_byte_identical_in_every_language_and_mode(real_texts, tmp_path, capsys, lang):
    import hashlib

    hyps, refs = real_texts[lang]
    h, r = _write(tmp_path / "hyp.txt", hyps), _write(tmp_path / "ref.txt", refs)
    for sentence in (False, True):
        assert main(["score", "--hyp", h, "--ref", r, "--lang", lang, *(["--sentence"] if sentence else [])]) == 0
        out = capsys.readouterr().out
        assert hashlib.sha256(out.encode()).hexdigest() == GOLDEN_SHA256[(lang, sentence)], out


def main_score_explicit(h, r, capsys) -> str:
    assert main(["score", "--hyp", h, "--ref", r, "--lang", "en", "--tokenize", "slrt"]) == 0
    return capsys.readouterr().out


def test_score_tokenize_flag_and_signature(real_texts, tmp_path, capsys):
    hyps, refs = real_texts["de"]
    h, r = _write(tmp_path / "hyp.txt", hyps), _write(tmp_path / "ref.txt", refs)
    assert main(["score", "--hyp", h, "--ref", r, "--lang", "de", "--tokenize", "intl"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["bleu4"] == round(BLEU(tokenize="intl").corpus_score(hyps, [refs]).score, 4)
    assert "tok:intl|smooth:exp" in cap.err and cap.err.startswith("signature: sacrebleu:de|")


def test_signatures_name_protocol_and_tokens():
    assert signature("zh") == "slrt:zh(characters)|nrefs:1|case:mixed|eff:no|tok:none|smooth:none|version:2.6.0"
    assert signature("en", "13a") == "sacrebleu:en|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
    p = metrics.protocol("de", "intl")
    assert p["tokenize"] == "intl" and "tok:intl" in p["bleu"] and p["chrf"].startswith("nrefs:1")


def test_standard_bleu_is_13a_or_zh(real_texts):
    for lang, tok in (("en", "13a"), ("de", "13a"), ("zh", "zh")):
        hyps, refs = real_texts[lang]
        std = standard_bleu(hyps, refs, lang)
        assert std["tokenize"] == tok and f"tok:{tok}" in std["signature"]
        assert abs(std["bleu4"] - sacrebleu.corpus_bleu(hyps, [refs], tokenize=tok).score) < 1e-6


def test_exp_smoothing_resampled_bleu_equals_sacrebleu():
    from rvlf.text.significance import bleu4_from_sums

    rng = np.random.default_rng(0)
    rows = []
    for _ in range(300):
        total = np.sort(rng.integers(0, 12, 4))[::-1]
        correct = np.minimum(total, rng.integers(0, 4, 4) * rng.integers(0, 2, 4))
        rows.append([int(rng.integers(0, 15)), int(rng.integers(1, 15)), *correct, *total])
    rows = np.asarray(rows, dtype=float)
    for smooth in ("exp", "none"):
        ours = bleu4_from_sums(rows, smooth)
        theirs = [BLEU.compute_bleu(list(r[2:6]), list(r[6:]), int(r[0]), int(r[1]), smooth_method=smooth).score
                  for r in rows]
        assert np.allclose(ours, theirs, atol=1e-9, rtol=0)


def test_paired_test_under_13a_scores_as_sacrebleu(real_texts):
    from rvlf.rl.rewards import translation_reward
    from rvlf.text.significance import paired_test

    hyps, refs = real_texts["en"]
    res = paired_test(hyps, refs, refs, "en", resamples=50, tokenize="13a")
    assert abs(res["bleu4"]["baseline"] - sacrebleu.corpus_bleu(hyps, [refs], tokenize="13a").score) < 1e-6
    assert res["bleu4"]["system"] == pytest.approx(100.0)
    reward = 100 * np.mean(translation_reward(hyps, refs, "en", tokenize="13a"))
    assert res["reward"]["baseline"] == pytest.approx(reward)
    assert reward != pytest.approx(100 * np.mean(translation_reward(hyps, refs, "en")))  # on other tokens


def test_any_language_code_and_script_checks(real_texts, tmp_path, capsys):
    fr = ["le chat est sur le tapis .", "il pleut aujourd'hui"]
    r = _write(tmp_path / "fr.txt", fr)
    for tok in ("slrt", "13a", "char"):
        assert main(["score", "--hyp", r, "--ref", r, "--lang", "fr", "--tokenize", tok]) == 0
        assert json.loads(capsys.readouterr().out)["bleu4"] == 100.0
    zh = _write(tmp_path / "zh.txt", real_texts["zh"][1])
    en = _write(tmp_path / "en.txt", real_texts["en"][1])
    cases = [(zh, "zh", "13a", "Chinese without spaces"), (zh, "zh", "none", "give --tokenize zh or char"),
             (en, "en", "zh", "hold no Chinese character"), (r, "fr", "zh", "hold no Chinese character"),
             (en, "zh", "slrt", "hold no Chinese character")]
    for path, lang, tok, msg in cases:
        assert main(["score", "--hyp", path, "--ref", path, "--lang", lang, "--tokenize", tok]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0] and path in err[0], err
    assert main(["score", "--hyp", zh, "--ref", zh, "--lang", "zh", "--tokenize", "char"]) == 0  # any script
    capsys.readouterr()


@pytest.mark.parametrize("tok,msg", [("flores200", "downloads its SentencePiece model"), ("spm", "downloads"),
                                     ("13b", "unknown tokenisation '13b'")])
def test_tokenisations_that_cannot_work_here_are_one_line(tmp_path, capsys, tok, msg):
    r = _write(tmp_path / "r.txt", ["a b"])
    assert main(["score", "--hyp", r, "--ref", r, "--lang", "en", "--tokenize", tok]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0], err
    with pytest.raises(RvlfError, match=msg):
        corpus_scores(["a"], ["a"], "en", tokenize=tok)


# --- rvlf compare: a .tsv is aligned by id (C15) and a table is printed ------------------------------

@pytest.fixture
def c15(real_texts, tmp_path):
    """The report's recipe: P.tsv a perfect system, P_reordered.tsv its lines reversed, refs.txt in P order."""
    refs = real_texts["en"][1][:16]
    lines = [f"s{i:02d}\t{r}\t{r}" for i, r in enumerate(refs)]
    return {"P": _write(tmp_path / "P.tsv", lines), "R": _write(tmp_path / "P_reordered.tsv", lines[::-1]),
            "refs": _write(tmp_path / "refs.txt", refs), "plain": _write(tmp_path / "P.txt", refs),
            "refs_rev": _write(tmp_path / "refs_rev.txt", refs[::-1]), "texts": refs}


def _compare(capsys, *argv):
    rc = main(["compare", "--lang", "en", "--resamples", "50", *argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_compare_tsv_is_aligned_by_id_with_and_without_ref(c15, capsys):
    without = _compare(capsys, "--baseline", c15["P"], "--system", c15["R"], "--json")
    with_ref = _compare(capsys, "--baseline", c15["P"], "--system", c15["R"], "--ref", c15["refs"], "--json")
    assert without[0] == with_ref[0] == 0
    a, b = json.loads(without[1]), json.loads(with_ref[1])
    assert a["bleu4"] == b["bleu4"] == {"baseline": 100.0, "system": 100.0, "diff": 0.0, "ci95": [0.0, 0.0],
                                        "p_value": 1.0}
    assert a["rouge_l"]["system"] == b["rouge_l"]["system"] == 100.0
    # variant: a plain file (in P's order) against P.tsv, the .tsv given first
    rc, out, _ = _compare(capsys, "--baseline", c15["P"], "--system", c15["plain"], "--ref", c15["refs"], "--json")
    assert rc == 0 and json.loads(out)["bleu4"]["system"] == 100.0


def test_compare_tsv_contradicting_ref_is_an_error_naming_the_id(c15, capsys):
    # --ref in another order than the .tsv's ids
    rc, out, err = _compare(capsys, "--baseline", c15["P"], "--system", c15["R"], "--ref", c15["refs_rev"])
    assert rc == 2 and not out and err.count("\n") == 1
    assert "P.tsv: id 's00' has another reference than line 1 of" in err and "refs_rev.txt" in err
    # variant: a plain baseline against the reordered .tsv: the plain files follow P_reordered's order,
    # and its own references contradict --ref at its first id
    rc, out, err = _compare(capsys, "--baseline", c15["plain"], "--system", c15["R"], "--ref", c15["refs"])
    assert rc == 2 and "P_reordered.tsv: id 's15' has another reference than line 1 of" in err


def test_compare_ids_that_differ_name_the_first(c15, tmp_path, capsys):
    lines = [f"s{i:02d}\t{r}\t{r}" for i, r in enumerate(c15["texts"])]
    other = _write(tmp_path / "Q.tsv", lines[:5] + [lines[5].replace("s05", "x05", 1)] + lines[6:])
    rc, _, err = _compare(capsys, "--baseline", c15["P"], "--system", other, "--ref", c15["refs"])
    assert rc == 2 and "1 ids only in" in err and "'s05'" in err


def test_compare_prints_a_table_with_the_signature(c15, tmp_path, capsys):
    sys_ = _write(tmp_path / "sys.txt", system_output(c15["texts"], "en"))
    rc, out, err = _compare(capsys, "--baseline", c15["plain"], "--system", sys_, "--ref", c15["refs"],
                            "--tokenize", "13a")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("system ") and "--tokenize 13a" in lines[0]
    row = next(line for line in lines if line.startswith("BLEU-4"))
    theirs = sacrebleu.corpus_bleu(system_output(c15["texts"], "en"), [c15["texts"]], tokenize="13a").score
    assert row.split()[1:4] == ["100.00", f"{theirs:.2f}", f"{theirs - 100:+.2f}"]
    assert {line.split()[0] for line in lines if line[:1].isalpha()} >= {"BLEU-4", "ROUGE-L", "chrF", "reward"}
    assert lines[-1] == "signature: sacrebleu:en|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"


def test_score_refuses_a_translations_tsv_as_plain_sentences(tmp_path):
    """A run's test_translations.tsv given to `rvlf score --hyp` would score `id<TAB>hyp<TAB>ref` lines, each
    holding its own reference (BLEU-4 43.6 for a system at 0.0): refused, naming file and line. Variants: the
    reference file is the .tsv; `rvlf compare` given the .tsv under a plain name."""
    from helpers import cli_output

    tsv = tmp_path / "test_translations.tsv"
    tsv.write_text("s1\tthe cat\tthe dog runs\ns2\ta b\tc d e\n")
    ref = tmp_path / "ref.txt"
    ref.write_text("the dog runs\nc d e\n")
    rc, out, err = cli_output("score", "--hyp", str(tsv), "--ref", str(ref), "--lang", "en")
    assert rc == 2 and out == "" and f"{tsv}:1" in err and "cut -f2" in err and err.count("\n") == 1
    rc, out, err = cli_output("score", "--hyp", str(ref), "--ref", str(tsv), "--lang", "en")
    assert rc == 2 and f"{tsv}:1" in err
    # another command that reads plain sentences: rvlf compare with the .tsv under another name
    renamed = tmp_path / "translations.txt"
    renamed.write_text(tsv.read_text())
    rc, out, err = cli_output("compare", "--baseline", str(renamed), "--system", str(ref), "--ref", str(ref),
                              "--lang", "en")
    assert rc == 2 and f"{renamed}:1" in err and "cut -f2" in err
