"""`rvlf evaluate`: score a checkpoint of any stage on a split (beam search 5)."""

import dataclasses
import json
import sys
from pathlib import Path

from rvlf.commands._common import check_output_file, non_negative_int, positive_int
from rvlf.inference.model_paths import check_model_arg
from rvlf.commands.score import add_tokenize_arg
from rvlf.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="score a checkpoint on a split (BLEU-1..4, ROUGE-L, reward; beam search 5)",
                       description="Decode a split with a stage-1, SFT or GRPO checkpoint and print its scores as "
                                   "JSON: the paper's protocol (or --tokenize's tokens), its `tokenize` and sacrebleu "
                                   "`signature`, and `sacrebleu`: sacrebleu's standard BLEU-1..4 of the same "
                                   "translations (13a; zh for Chinese) with its signature (docs/evaluation.md).")
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint folder (RUN/best or RUN/last), exported model folder, a run folder (its best "
                        "checkpoint, else its last), or a Hugging Face hub id owner/name")
    p.add_argument("--revision", default=None, help="hub revision (branch, tag or commit) of a hub id --checkpoint")
    p.add_argument("--split", default="test", help="train, dev or test (default: test)")
    p.add_argument("--num-beams", type=positive_int, default=None, help="beam width (default: the config's train.num_beams; 5 in the paper's and the demo's configs, 2 in --quick's)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="inputs decoded together (default: the run's train.batch_size, as its dev evaluations: "
                        "padding changes the arithmetic, so this reproduces the logged dev scores exactly)")
    p.add_argument("--max-samples", type=non_negative_int, default=0,
                   help="score only the first N samples (default: 0, all)")
    p.add_argument("--translations", default=None, help="also write id<TAB>hypothesis<TAB>reference lines here")
    add_tokenize_arg(p)
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="data overrides, e.g. data.root=/data/csl data.features_dir=/data/feats")
    p.set_defaults(func=run)


def run(args) -> int:
    # PyYAML, pydantic: only when the command runs (`rvlf --help` imports this module)
    from rvlf.config import DataConfig, override_section

    override_section(DataConfig(), "data", args.overrides)  # one line naming the override, before anything is read
    check_model_arg(args.checkpoint)  # a path that is no model: one line before torch loads (a hub id: below)
    if args.translations:
        check_output_file(args.translations, "--translations", "translations.tsv")
    # torch, transformers, sacrebleu: after the overrides are checked, so an error there is quick
    import torch
    from torch.utils.data import Subset

    from rvlf.config import apply_overrides, from_dict, to_dict
    from rvlf.data.dataset import collate
    from rvlf.inference.api import resolve_pretrained
    from rvlf.inference.export import checkpoint_dir
    from rvlf.inference.loading import load_stage, load_stage_config
    from rvlf.rl.rewards import translation_reward
    from rvlf.text.metrics import SLRT, check_tokenize, corpus_scores, signature, standard_bleu
    from rvlf.train.common import load_samples, split_dataset, split_name, write_translations
    from rvlf.train.evaluation import evaluate_stage

    tok = args.tokenize if args.tokenize == SLRT else check_tokenize(args.tokenize)  # before any decoding

    # a run folder: its best; a hub id: its snapshot (as from_pretrained, rvlf translate and rvlf app)
    ckpt_dir = checkpoint_dir(resolve_pretrained(args.checkpoint, revision=args.revision))
    # the split is read and checked first: a broken data folder is reported before the weights load
    cfg = load_stage_config(ckpt_dir)
    data_over = [o[len("data."):] for o in args.overrides if o.startswith("data.")]
    if len(data_over) != len(args.overrides):
        raise ConfigError("evaluate takes data.* overrides only")
    data = from_dict(DataConfig, apply_overrides(to_dict(cfg.data), data_over), "data")
    data = locate_data(data, ckpt_dir, given={o.split("=", 1)[0] for o in data_over}, checkpoint=args.checkpoint)
    cfg = dataclasses.replace(cfg, data=data)
    use_dino = getattr(cfg, "fusion", None) is not None and (cfg.fusion.use_face or cfg.fusion.use_hand)
    by_split = load_samples(cfg.data, [split_name(cfg.data, args.split)])  # checks only the split it scores
    dataset = split_dataset(cfg.data, by_split, args.split, use_dino=use_dino)
    if args.split == "dev" and 0 < cfg.data.dev_max_samples < len(dataset) and not args.max_samples:
        print(f"rvlf evaluate: note: the run scored dev on its first {cfg.data.dev_max_samples} samples "
              f"(data.dev_max_samples); --max-samples {cfg.data.dev_max_samples} reproduces its logged dev scores",
              file=sys.stderr)
    if args.max_samples:
        dataset = Subset(dataset, list(range(min(args.max_samples, len(dataset)))))
    stage, model, loaded_cfg = load_stage(ckpt_dir)
    stage.cfg = dataclasses.replace(loaded_cfg, data=cfg.data)  # the stage decodes with the data.* overrides too
    stage.lang = cfg.data.language()  # scored in the references' language (data.dataset / data.lang overrides)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    res = evaluate_stage(stage, model, dataset, collate_fn=collate, batch_size=args.batch_size or cfg.train.batch_size,
                         num_beams=args.num_beams or cfg.train.num_beams, max_new_tokens=cfg.train.max_new_tokens,
                         device=device, progress=True)
    if args.translations:
        write_translations(args.translations, res.ids, res.hyps, res.refs)
    metrics = res.metrics
    if tok != SLRT:  # the same translations on --tokenize's tokens (every metric, the reward too)
        metrics = corpus_scores(res.hyps, res.refs, stage.lang, tokenize=tok)
        rewards = translation_reward(res.hyps, res.refs, stage.lang, tokenize=tok)
        metrics["reward"] = 100.0 * sum(rewards) / max(1, len(rewards))
    std = standard_bleu(res.hyps, res.refs, stage.lang)
    print(json.dumps({"checkpoint": str(args.checkpoint), "split": args.split, "samples": len(res.ids),
                      **{k: round(v, 2) for k, v in metrics.items()}, "tokenize": tok,
                      "signature": signature(stage.lang, tok),
                      "sacrebleu": {k: round(v, 2) if isinstance(v, float) else v for k, v in std.items()}}))
    return 0


DATA_PATHS = ("root", "features_dir")


def locate_data(data, ckpt_dir, *, given: set[str], checkpoint: str):
    """The checkpoint's `data.root` / `data.features_dir` (its config's, not given on the command line)
    as seen from here. A relative path is relative to the folder training ran in, which is not this
    one when the checkpoint was moved or `rvlf evaluate` runs elsewhere: it is looked for under each
    folder above the checkpoint (`runs/demo/corpus/manifest.jsonl` of `/srv/rvlf/runs/demo/grpo/best`
    is found under `/srv/rvlf`; a note on stderr says so). A path found nowhere is one `ConfigError`
    saying which `data.root` / `data.features_dir` to pass (an exported folder keeps only names).
    Returns a new `DataConfig` (the one given is not changed)."""
    for key in DATA_PATHS:
        value = getattr(data, key)
        if not value or key in given or Path(value).expanduser().exists():
            continue
        rel = Path(value)
        found = None
        if not rel.is_absolute() and len(rel.parts) > 1:  # a bare name could match any folder above: not guessed
            found = next((up / rel for up in Path(ckpt_dir).resolve().parents if (up / rel).exists()), None)
        if found is not None:
            data = dataclasses.replace(data, **{key: str(found)})
            print(f"rvlf evaluate: note: data.{key} {value} (the checkpoint's config) found as {found}; pass "
                  f"data.{key}=PATH for other data", file=sys.stderr)
            continue
        what = ("the dataset: a manifest .jsonl or the release folder" if key == "root"
                else "the folder of its .npz feature files")
        raise ConfigError(f"{checkpoint}: data.{key} {value!r} (from its config.yaml) is not found from "
                          f"{Path.cwd()}; pass data.{key}=PATH ({what}), e.g. rvlf evaluate --checkpoint "
                          f"{checkpoint} --split test data.{key}=PATH")
    return data
