"""`rvlf compare`: is system B really better than baseline A? Paired significance test (docs/evaluation.md)."""

from __future__ import annotations

METRIC_HELP = "bleu4, rouge_l, chrf, reward"


def register(sub) -> None:
    p = sub.add_parser(
        "compare", help="paired significance test of two systems on the same references (BLEU-4, ROUGE-L, chrF, reward)",
        description="Compare a system with a baseline on the same test sentences. Prints one JSON object: for each "
                    f"of {METRIC_HELP} the baseline and system scores (0-100), diff = system - baseline, ci95 = the 95% "
                    "interval of the difference and p_value (two-sided), plus `settings`. Paired bootstrap resampling "
                    "(default) or approximate randomisation (--test ar); the same resampled sentences for every "
                    "metric; a given seed gives the same output. Files are UTF-8, one sentence a line, or the "
                    "`test_translations.tsv` of two runs (then --ref may be left out). See docs/evaluation.md.")
    p.add_argument("--baseline", required=True, help="baseline hypotheses (one a line), or a run's test_translations.tsv")
    p.add_argument("--system", required=True, help="system hypotheses (one a line), or a run's test_translations.tsv")
    p.add_argument("--ref", default=None, help="references (one a line); optional when both inputs are .tsv")
    p.add_argument("--lang", required=True, metavar="{zh,de,en}", help="zh: character level; de, en: whitespace tokens")
    p.add_argument("--resamples", type=int, default=1000,
                   help="bootstrap resamples, or randomisation trials with --test ar (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--test", choices=("bs", "ar"), default="bs",
                   help="bs: paired bootstrap resampling (default); ar: approximate randomisation "
                        "(the interval still comes from the bootstrap)")
    p.set_defaults(func=run)


def load_pair(baseline: str, system: str, ref: str | None) -> tuple[list[str], list[str], list[str]]:
    """(baseline hyps, system hyps, refs), aligned. Plain files are aligned by line; two `.tsv`
    translation files by id (same ids and references required). Raises `RvlfError`/`InputFileError`."""
    from rvlf.errors import InputFileError, RvlfError
    from rvlf.text.files import read_lines, read_translations
    from rvlf.text.metrics import protocol_text

    tsv = [p.lower().endswith(".tsv") for p in (baseline, system)]
    if ref is None and not all(tsv):
        raise RvlfError("--ref is needed unless --baseline and --system are both test_translations.tsv files")
    if ref is None:
        a, b = read_translations(baseline), read_translations(system)
        if set(a) != set(b):
            only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
            which = (f"{len(only_a)} ids only in {baseline} (first {only_a[0]!r})" if only_a
                     else f"{len(only_b)} ids only in {system} (first {only_b[0]!r})")
            raise RvlfError(f"the two runs translated different sentences: {which}")
        for i in a:
            if protocol_text(a[i][1], "en") != protocol_text(b[i][1], "en"):
                raise InputFileError(system, f"id {i!r} has another reference than in {baseline}")
        ids = list(a)
        return [a[i][0] for i in ids], [b[i][0] for i in ids], [a[i][1] for i in ids]

    def hyps(path: str, is_tsv: bool) -> list[str]:
        return [h for h, _ in read_translations(path).values()] if is_tsv else read_lines(path)

    base, sys_, refs = hyps(baseline, tsv[0]), hyps(system, tsv[1]), read_lines(ref)
    for path, lines in ((baseline, base), (system, sys_)):
        if len(lines) != len(refs):
            raise RvlfError(f"{path} has {len(lines)} sentences but {ref} has {len(refs)}")
    if not refs:
        raise InputFileError(ref, "no sentences")
    return base, sys_, refs


def run(args) -> int:
    import json
    import logging

    from rvlf.text.metrics import check_lang
    from rvlf.text.script import check_scoring_lang
    from rvlf.text.significance import TESTS, paired_test

    lang = check_lang(args.lang)
    base, sys_, refs = load_pair(args.baseline, args.system, args.ref)
    warning = check_scoring_lang(refs, lang, args.ref or args.baseline)  # a wrong --lang scores in the wrong units
    if warning:
        logging.getLogger("rvlf").warning("warning: %s", warning)
    result = paired_test(base, sys_, refs, lang, resamples=args.resamples, seed=args.seed, test=args.test)
    out: dict = {m: {"baseline": round(r["baseline"], 4), "system": round(r["system"], 4), "diff": round(r["diff"], 4),
                     "ci95": [round(x, 4) for x in r["ci95"]], "p_value": round(r["p_value"], 6)}
                 for m, r in result.items()}
    out["settings"] = {"test": args.test, "test_name": TESTS[args.test], "resamples": args.resamples,
                       "seed": args.seed, "sentences": len(refs), "lang": lang,
                       "baseline": args.baseline, "system": args.system, "ref": args.ref}
    print(json.dumps(out, ensure_ascii=False))
    return 0
