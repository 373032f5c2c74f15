"""`rvlf compare`: is system B really better than baseline A? Paired significance test (docs/evaluation.md)."""

from __future__ import annotations

import json
import logging

from rvlf.commands.score import add_tokenize_arg
from rvlf.errors import InputFileError, RvlfError
from rvlf.text.files import read_sentences, read_translations

METRIC_HELP = "bleu4, rouge_l, chrf, reward"
METRIC_NAMES = {"bleu4": "BLEU-4", "rouge_l": "ROUGE-L", "chrf": "chrF", "reward": "reward"}


def register(sub) -> None:
    p = sub.add_parser(
        "compare", help="paired significance test of two systems on the same references (BLEU-4, ROUGE-L, chrF, reward)",
        description="Compare a system with a baseline on the same test sentences. Prints a table (--json: one JSON "
                    f"object): for each of {METRIC_HELP} the baseline and system scores (0-100), diff = system - "
                    "baseline, the 95% interval of the difference and the two-sided p-value, then the settings and the "
                    "protocol's sacrebleu signature. Paired bootstrap resampling (default) or approximate randomisation "
                    "(--test ar); the same resampled sentences for every metric; a given seed gives the same output. "
                    "Files are UTF-8, one sentence a line, or runs' `test_translations.tsv` (id<TAB>hypothesis<TAB>"
                    "reference). A .tsv is always aligned by id: two .tsv files must hold the same ids and references "
                    "(then --ref may be left out); with --ref, or with a plain file, the plain files' lines follow the "
                    "order of the first .tsv given and each .tsv's references must agree with --ref; any difference is "
                    "an error naming the first differing id. See docs/evaluation.md.")
    p.add_argument("--baseline", required=True, help="baseline hypotheses (one a line), or a run's test_translations.tsv")
    p.add_argument("--system", required=True, help="system hypotheses (one a line), or a run's test_translations.tsv")
    p.add_argument("--ref", default=None, help="references (one a line); optional when both inputs are .tsv")
    p.add_argument("--lang", required=True, metavar="LANG",
                   help="language code: zh is scored by character under slrt; de, en or any other by whitespace tokens")
    add_tokenize_arg(p)
    p.add_argument("--resamples", type=int, default=1000,
                   help="bootstrap resamples, or randomisation trials with --test ar (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--test", choices=("bs", "ar"), default="bs",
                   help="bs: paired bootstrap resampling (default); ar: approximate randomisation "
                        "(the interval still comes from the bootstrap)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=run)


def _same_text(a: str, b: str) -> bool:
    """References agree when their whitespace tokens (after the protocol's text hygiene) agree."""
    # sacrebleu (rvlf.text.metrics): only when references are compared
    from rvlf.text.metrics import protocol_text

    return protocol_text(a, "en") == protocol_text(b, "en")


def load_pair(baseline: str, system: str, ref: str | None) -> tuple[list[str], list[str], list[str]]:
    """(baseline hyps, system hyps, refs), aligned.

    A `.tsv` (`id<TAB>hypothesis<TAB>reference`) is always aligned by id: the order is the ids sorted when
    both inputs are `.tsv` and there is no `ref` (the same intervals whatever the rows' order), else the
    first `.tsv`'s (baseline, else system), which plain files follow; another `.tsv` must hold the same ids and references. Plain files (hypotheses,
    `ref`) are one sentence a line in that order (in line order when no input is a `.tsv`). With `ref`, each
    `.tsv`'s references must agree with its lines. Raises `RvlfError`/`InputFileError` naming the first
    differing id (or the line counts)."""
    paths = {"baseline": baseline, "system": system}
    tsv = {k: read_translations(p) for k, p in paths.items() if p.lower().endswith(".tsv")}
    if ref is None and len(tsv) < 2:
        raise RvlfError("--ref is needed unless --baseline and --system are both test_translations.tsv files")
    refs = read_sentences(ref) if ref is not None else None
    if refs is not None and not refs:
        raise InputFileError(ref, "no sentences")
    if not tsv:  # plain files: aligned by line
        base, sys_ = read_sentences(baseline), read_sentences(system)
        for path, lines in ((baseline, base), (system, sys_)):
            if len(lines) != len(refs):
                raise RvlfError(f"{path} has {len(lines)} sentences but {ref} has {len(refs)}")
        return base, sys_, refs

    first = "baseline" if "baseline" in tsv else "system"
    order = list(tsv[first])
    if len(tsv) == 2 and refs is None:  # only ids to go by: sorted, so the resamples do not hang on row order
        order.sort()
    for key, rows in tsv.items():
        if key == first:
            continue
        if set(rows) != set(order):
            only_a, only_b = [i for i in order if i not in rows], [i for i in rows if i not in tsv[first]]
            which = (f"{len(only_a)} ids only in {paths[first]} (first {only_a[0]!r})" if only_a
                     else f"{len(only_b)} ids only in {paths[key]} (first {only_b[0]!r})")
            raise RvlfError(f"the two runs translated different sentences: {which}")
        for i in order:
            if not _same_text(rows[i][1], tsv[first][i][1]):
                raise InputFileError(paths[key], f"id {i!r} has another reference than in {paths[first]}")
    if refs is None:
        refs = [tsv[first][i][1] for i in order]
    else:
        if len(refs) != len(order):
            raise RvlfError(f"{paths[first]} has {len(order)} sentences but {ref} has {len(refs)}")
        for n, i in enumerate(order):
            if not _same_text(refs[n], tsv[first][i][1]):
                raise InputFileError(paths[first], f"id {i!r} has another reference than line {n + 1} of {ref} "
                                                   f"({tsv[first][i][1][:40]!r} vs {refs[n][:40]!r}): a .tsv is aligned "
                                                   f"by id, and plain files follow the order of {paths[first]}")

    def hyps(key: str) -> list[str]:
        if key in tsv:
            return [tsv[key][i][0] for i in order]
        lines = read_sentences(paths[key])
        if len(lines) != len(order):
            raise RvlfError(f"{paths[key]} has {len(lines)} sentences but {paths[first]} has {len(order)}")
        return lines

    return hyps("baseline"), hyps("system"), refs


def format_table(result: dict, settings: dict) -> str:
    """The human-readable comparison: one row a metric, then the settings and the signature."""
    head = ("metric", "baseline", "system", "diff", "95% CI of diff", "p", "")
    rows = []
    for m, r in result.items():
        lo, hi = r["ci95"]
        rows.append((METRIC_NAMES.get(m, m), f"{r['baseline']:.2f}", f"{r['system']:.2f}", f"{r['diff']:+.2f}",
                     f"[{lo:+.2f}, {hi:+.2f}]", f"{r['p_value']:.4f}",
                     "significant (p < 0.05)" if r["p_value"] < 0.05 else "n.s."))
    widths = [max(len(row[c]) for row in (head, *rows)) for c in range(len(head))]
    align = lambda row: "  ".join(cell.ljust(w) if c in (0, 6) else cell.rjust(w)  # noqa: E731
                                  for c, (cell, w) in enumerate(zip(row, widths))).rstrip()
    s = settings
    lines = [f"system {s['system']} vs baseline {s['baseline']}: {s['sentences']} sentences, --lang {s['lang']}, "
             f"--tokenize {s['tokenize']}", "", align(head), *(align(r) for r in rows), "",
             f"{s['test_name']}, {s['resamples']} resamples, seed {s['seed']}; diff = system - baseline; "
             "n.s.: the test set cannot tell the two apart",
             f"signature: {s['signature']}"]
    return "\n".join(lines)


def run(args) -> int:
    # sacrebleu, NumPy: only when the command runs (`rvlf --help` imports this module)
    from rvlf.text.metrics import SLRT, check_lang, check_scoring, check_tokenize, signature
    from rvlf.text.significance import TESTS, paired_test

    lang = check_lang(args.lang)
    tok = args.tokenize if args.tokenize == SLRT else check_tokenize(args.tokenize)
    base, sys_, refs = load_pair(args.baseline, args.system, args.ref)
    warning = check_scoring(refs, lang, tok, args.ref or args.baseline)  # a wrong --lang/--tokenize: wrong units
    if warning:
        logging.getLogger("rvlf").warning("warning: %s", warning)
    result = paired_test(base, sys_, refs, lang, resamples=args.resamples, seed=args.seed, test=args.test,
                         tokenize=tok)
    out: dict = {m: {"baseline": round(r["baseline"], 4), "system": round(r["system"], 4), "diff": round(r["diff"], 4),
                     "ci95": [round(x, 4) for x in r["ci95"]], "p_value": round(r["p_value"], 6)}
                 for m, r in result.items()}
    settings = {"test": args.test, "test_name": TESTS[args.test], "resamples": args.resamples,
                "seed": args.seed, "sentences": len(refs), "lang": lang,
                "baseline": args.baseline, "system": args.system, "ref": args.ref,
                "tokenize": tok, "signature": signature(lang, tok)}
    if args.json:
        out["settings"] = settings
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(format_table(out, settings))
    return 0
