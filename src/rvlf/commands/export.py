"""`rvlf export`: a checkpoint -> a self-contained model folder with a Hugging Face model card."""

from rvlf.inference.model_paths import check_destination, check_model_arg
from rvlf.errors import RvlfError


def register(sub) -> None:
    p = sub.add_parser("export", help="write a checkpoint as a self-contained model folder with a model card",
                       description="Writes OUT with the weights (safetensors), configuration, tokenizers, DINOv2 "
                                   "(a local copy or its hub id), results.json and README.md, a Hugging Face model "
                                   "card with the run's dev/test scores. OUT loads with `rvlf translate "
                                   "--checkpoint OUT`, `rvlf app --checkpoint OUT` and "
                                   "`SignTranslator.from_pretrained(OUT)`; upload it with `hf upload OWNER/NAME OUT` "
                                   "(docs/sharing.md).")
    p.add_argument("checkpoint", metavar="CHECKPOINT", nargs="?", default=None,
                   help="checkpoint folder of any stage (RUN/best), or a run folder (its best checkpoint)")
    p.add_argument("--checkpoint", dest="checkpoint_option", metavar="CHECKPOINT", default=None,
                   help="the same, as `rvlf translate` / `rvlf evaluate` take it")
    p.add_argument("--out", required=True, help="folder to write (new, empty, or an earlier export, replaced)")
    p.add_argument("--base", choices=["merge", "reference"], default="merge",
                   help="SFT/GRPO: merge the LoRA adapters into the language model and save it (default), or "
                        "save the adapters only and reference the base LM by its hub id")
    p.add_argument("--license", default=None,
                   help="licence id for the card (default: mit for the demo corpus, else 'other': "
                        "weights inherit their data's terms)")
    p.add_argument("--dataset", default=None, help="dataset id for the card (default: from the config)")
    p.add_argument("--name", default=None, help="model name in the card (default: OUT's folder name)")
    p.set_defaults(func=run)


def run(args) -> int:
    if (args.checkpoint is None) == (args.checkpoint_option is None):
        raise RvlfError("give the checkpoint once: rvlf export CHECKPOINT --out DIR (or --checkpoint CHECKPOINT)")
    # the paths first: a wrong one is one line at once, not after torch and transformers load
    check_model_arg(args.checkpoint or args.checkpoint_option, hub=False)
    check_destination(args.out)
    # torch, safetensors: only for `rvlf export` itself (`rvlf --help` imports this module)
    from rvlf.inference.export import export_model

    out = export_model(args.checkpoint or args.checkpoint_option, args.out, base=args.base, license=args.license, dataset=args.dataset,
                       name=args.name)
    files = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir())
    print(f"wrote {out}: {', '.join(files)}", flush=True)
    return 0
