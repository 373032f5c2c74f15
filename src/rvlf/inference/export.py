"""`rvlf export`: a checkpoint -> a self-contained model folder with a Hugging Face model card.

The folder (`rvlf.inference.model_folder` describes its files) loads with `SignTranslator.from_pretrained`,
`rvlf translate --checkpoint`, `rvlf evaluate --checkpoint` and `rvlf app --checkpoint`, and
uploads as it is (`hf upload OWNER/NAME DIR`, docs/sharing.md). Its `README.md` is a model card
whose YAML front matter follows the Hub's model-card metadata spec (language, license, tags,
datasets, metrics, base_model, and a `model-index` with the run's dev and test scores), written
with `huggingface_hub.ModelCardData`; `results.json` keeps the same scores for programs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from rvlf import __version__
from rvlf.inference.loading import load_stage
from rvlf.inference.model_folder import is_exported, portable, read_info, save_exported
from rvlf.jsonfile import read_json
from rvlf.train import checkpoint as ckpt
from rvlf.train import training_data

log = logging.getLogger("rvlf.inference.export")

STAGE_NAMES = {"pretrain": "Stage 1 (visual-language pre-training, VLP decoder)", "sft": "SLT-SFT",
               "grpo": "SLT-GRPO"}
# dataset kind -> (pretty name, dataset id for the card's `datasets` and `model-index`)
DATASETS = {"phoenix": ("PHOENIX-2014T", "phoenix-2014t"), "csl-daily": ("CSL-Daily", "csl-daily"),
            "how2sign": ("How2Sign", "how2sign"), "openasl": ("OpenASL", "openasl")}
LANGUAGES = {"en": "English", "de": "German", "zh": "Chinese"}
METRICS = (("bleu1", "bleu", "BLEU-1", 1), ("bleu2", "bleu", "BLEU-2", 2), ("bleu3", "bleu", "BLEU-3", 3),
           ("bleu4", "bleu", "BLEU-4", 4), ("rouge_l", "rouge", "ROUGE-L", None))
CITATION = """@article{rao2025rvlf,
  title   = {{RVLF}: A Reinforcing Vision-Language Framework for Gloss-Free Sign Language Translation},
  author  = {Rao, Zhi and Zhou, Yucheng and Zhou, Benjia and Huang, Yiqing and Escalera, Sergio and Wan, Jun},
  journal = {arXiv preprint arXiv:2512.07273},
  year    = {2025}
}"""


def checkpoint_dir(path: str | Path) -> Path:
    """The checkpoint to read for `path`: an export or checkpoint folder as it is; a run folder's
    `best` checkpoint (the paper's model selection, Sec. 4.1), else its `last`."""
    path = Path(path)
    if is_exported(path) or (path / ckpt.STATE_FILE).is_file():
        return path
    if (path / "best" / ckpt.STATE_FILE).is_file():
        return path / "best"
    return ckpt.resolve_checkpoint(path)


def checkpoint_scores(directory: str | Path) -> dict:
    """The dev/test scores (BLEU-1..4, ROUGE-L, reward, x100) that belong to this checkpoint.

    An export keeps them in `results.json`. For a training checkpoint they come from its run's
    `results.json` (test: the checkpoint the run scored, `best` or else `last`) and its own
    `trainer_state.json` (`best_dev`: the dev score at which `best` was kept). Missing: `{}`."""
    directory = Path(directory)
    if is_exported(directory):
        path = directory / "results.json"
        return read_json(path) if path.is_file() else {}
    run = directory.parent
    results = read_json(run / "results.json") if (run / "results.json").is_file() else {}
    scored = run / "best" if (run / "best").is_dir() else run / "last"
    if not scored.exists() or scored.resolve() != directory.resolve():
        return {}
    state = ckpt.load_trainer_state(directory)
    out = {}
    dev = state.get("best_dev") or results.get("best_dev") or results.get("dev")
    if dev:
        out["dev"] = dev
    if results.get("test"):
        out["test"] = results["test"]
        for key in ("test_sacrebleu", "protocol"):  # sacrebleu's standard BLEU and the signatures (rvlf >= #30)
            if results.get(key):
                out[key] = results[key]
    if "global_step" in state:
        out["step"] = state["global_step"]
    return out


def dataset_names(cfg, override: str | None = None) -> tuple[str, str]:
    """(pretty name, id) of the training data: a known benchmark, the demo corpus, or a manifest's folder."""
    if override:
        return override, override
    if cfg.data.dataset in DATASETS:
        return DATASETS[cfg.data.dataset]
    root = Path(cfg.data.root)
    corpus = root.parent / "corpus.json"
    if corpus.is_file():
        try:
            if "n_signers" in json.loads(corpus.read_text()).get("config", {}):
                return "rvlf demo corpus (synthetic sign language)", "rvlf-demo-corpus"
        except (OSError, json.JSONDecodeError, AttributeError):
            pass
    name = root.parent.name or "custom"
    return name, name


def _eval_results(scores: dict, model_name: str, dataset: tuple[str, str]):
    out = []
    for split in ("dev", "test"):
        for key, metric_type, label, order in METRICS:
            value = (scores.get(split) or {}).get(key)
            if value is None:
                continue
            out.append(EvalResult(task_type="translation", task_name="Sign Language Translation",
                                  dataset_type=dataset[1], dataset_name=dataset[0], dataset_split=split,
                                  metric_type=metric_type, metric_value=round(float(value), 2),
                                  metric_name=f"{label} ({split})",
                                  metric_args={"max_order": order} if order else None))
    return out


def _score_table(scores: dict) -> str:
    rows = []
    for split in ("dev", "test"):
        s = scores.get(split)
        if s:
            rows.append(f"| {split} | " + " | ".join(f"{s[k]:.2f}" if k in s else "-" for k, *_ in METRICS) + " |")
    if not rows:
        return ("No scores were recorded for this checkpoint. Score it with "
                "`rvlf evaluate --checkpoint . --split test data.root=YOUR_DATA`.")
    head = "| split | " + " | ".join(label for _, _, label, _ in METRICS) + " |\n| --- |" + " ---: |" * len(METRICS)
    notes = []
    if (scores.get("protocol") or {}).get("signature"):
        notes.append(f"Protocol signature: `{scores['protocol']['signature']}`.")
    std = scores.get("test_sacrebleu") or {}
    if isinstance(std.get("bleu4"), (int, float)) and std.get("signature"):
        notes.append(f"sacrebleu's standard BLEU-4 of the same test translations (`--tokenize {std.get('tokenize')}`, "
                     f"as papers that use sacrebleu's defaults report): {std['bleu4']:.2f} (`{std['signature']}`).")
    return head + "\n" + "\n".join(rows) + ("\n\n" + "\n".join(notes) if notes else "")


def model_card(cfg, info: dict, scores: dict, *, name: str, license: str | None = None,
               dataset: str | None = None) -> str:
    """The model card (`README.md`): Hub metadata (YAML front matter) and the description."""
    stage = info["stage"]
    lang = info["language"]
    data_name, data_id = dataset_names(cfg, dataset)
    trained_on = info.get("training_data") if isinstance(info.get("training_data"), dict) else {}
    synthetic = data_id == "rvlf-demo-corpus" or (trained_on.get("synthetic") is True and not dataset)
    if synthetic:
        data_name, data_id = "rvlf demo corpus (synthetic sign language)", "rvlf-demo-corpus"
    unknown = not dataset and "synthetic" in trained_on and trained_on["synthetic"] is None
    license = license or ("mit" if synthetic else "other")
    tags = ["sign-language-translation", "sign-language", "gloss-free", "rvlf", "slt",
            {"pretrain": "vlp", "sft": "slt-sft", "grpo": "slt-grpo"}[stage]]
    card_data = ModelCardData(
        language=[lang], license=license, library_name="rvlf", tags=tags, datasets=[data_id],
        metrics=["bleu", "rouge"], base_model=info.get("base_model") or None, pipeline_tag="translation",
        model_name=name, eval_results=_eval_results(scores, name, (data_name, data_id)) or None,
    )
    if license == "other":
        card_data.license_name = "training-data-terms"
    llm = getattr(cfg, "sft_llm", None) or getattr(cfg, "llm", None)
    lm_line = ""
    if llm is not None:
        shape = ", ".join(f"{k} {v}" for k, v in llm.tiny.items())
        lm_line = (f"a random-initialised tiny Qwen3 ({shape})" if llm.tiny else
                   f"the run's own base LM `{Path(llm.name_or_path).name}` (no hub has it; `rvlf demo`: a tiny Qwen3 "
                   "pretrained on the demo language)" if llm.keep_base else f"`{portable(llm.name_or_path)}`")
        how = {"merged": "with every LoRA adapter merged into its weights (`language_model/`)",
               "reference": "referenced by hub id (downloaded on first use); the LoRA adapters are in "
                            "`model.safetensors`"}[info["language_model"]]
        lm_line = f"- Language model: {lm_line}, {how}.\n"
    dino = info.get("dinov2")
    dino_line = ""
    if dino:
        dino_line = ("- DINOv2 (face and hand crops, Eq. 12): the small copy in `dinov2/`.\n" if dino == "dinov2"
                     else f"- DINOv2 (face and hand crops, Eq. 12): `{dino}` from the Hugging Face hub.\n")
    dev_note = ""
    if cfg.data.dev_max_samples:
        dev_note = f" Dev scores are on the first {cfg.data.dev_max_samples} dev samples (`data.dev_max_samples`)."
    stage_cmd = {"pretrain": "rvlf pretrain --config config.yaml --out runs/pretrain",
                 "sft": "rvlf sft --config config.yaml --init runs/pretrain/best --out runs/sft",
                 "grpo": "rvlf grpo --config config.yaml --init runs/sft/best --out runs/grpo"}[stage]
    limits_data = ("It was trained on the rvlf demo corpus, a generated sign language with synthetic signers: "
                   "it does not translate any real sign language and exists to try the tools."
                   if synthetic else
                   f"It was trained on {data_name} only: expect it to work on signers, camera set-ups and "
                   f"topics like those of {data_name}, and to fail silently elsewhere (a fluent sentence is not a "
                   "correct one).")
    warning = ""
    if synthetic:
        warning = ("\n> **Demo model.** Trained on the rvlf synthetic demo language (generated sentences, rendered "
                   "signers), not on a real sign language: its output is not a translation of real signing. "
                   "`rvlf translate`, the Python API and `rvlf app` say so beside every output.\n")
    elif unknown:
        warning = ("\n> **Training data unknown.** The checkpoint this was exported from does not record what it "
                   "was trained on: its output may not be a translation.\n")
    body = f"""
# {name}
{warning}
A gloss-free sign language translation model trained with rvlf, an open-source implementation of RVLF
(Rao et al., 2025): sign-language video in, {LANGUAGES.get(lang, lang)} text out. This is the **{STAGE_NAMES[stage]}** model.

## Scores

BLEU-1..4 and ROUGE-L (x100) with the field's protocol (beam search {cfg.train.num_beams}; see rvlf's
`docs/evaluation.md`), on {data_name}.{dev_note}

{_score_table(scores)}

## Use

```bash
rvlf translate VIDEO.mp4 --checkpoint .          # or a frame folder, a .pose/.pkl/.npz keypoint file
rvlf app --checkpoint .                          # try it in the browser (pip install 'rvlf[app]')
```

```python
from rvlf import SignTranslator
model = SignTranslator.from_pretrained("OWNER/NAME")   # the hub repo holding this folder, or its path
print(model.translate("video.mp4"))
```

Inputs go through MediaPipe Holistic (77 keypoints a frame) and, for the face/hand features, 224x224 crops
encoded by DINOv2, as in training (`rvlf extract`).

## What is in this folder

- `config.yaml`: the run's full configuration; `rvlf_model.json`: what rvlf needs to load it.
- `model.safetensors`: the skeleton encoder{", fusion and projector (Eqs. 12-13)" if stage != "pretrain" else
  " and the mBART-style text encoder/decoder (Sec. 3.1)"}.
{lm_line}{dino_line}
## Training

Data: {data_name} (`data.dataset: {cfg.data.dataset}`), {lang}; sequences cut at {cfg.data.max_frames} frames.
{f"This checkpoint is from optimiser step {scores['step']} of its stage. " if scores.get("step") is not None else ""}The three stages of
RVLF are visual-language pre-training, SLT-SFT and SLT-GRPO; each takes the previous stage's best checkpoint:

```bash
rvlf extract VIDEOS/ --out features/                      # keypoints + DINOv2 features
rvlf pretrain --config PRETRAIN.yaml --out runs/pretrain
rvlf sft --config SFT.yaml --init runs/pretrain/best --out runs/sft
rvlf grpo --config GRPO.yaml --init runs/sft/best --out runs/grpo
rvlf export runs/{stage}/best --out {name}
```

This stage again, from its own configuration: `{stage_cmd}`.

## Intended use and limits

For research on sign language translation and for trying a trained model. {limits_data}
Machine translation of sign language is not a replacement for a qualified interpreter: do not use it where
a wrong translation can harm someone (medical, legal, emergency settings). Keypoint detection fails on some
signers, lighting and camera angles; a video in which no signer is found gives no translation, and one of a
few frames (a still photo) or without hands gets a warning beside its translation.

## Licence

{"MIT, like the synthetic corpus it was trained on." if synthetic else
 "These weights inherit the terms of their training data and of the base language model; set `license` "
 "in this card's metadata (`rvlf export --license`) before sharing."}

## Citation

```bibtex
{CITATION}
```

Made with rvlf {__version__}.
"""
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}").content


def export_stage(stage, cfg, out: str | Path, *, source: str | Path | None, base: str = "merge",
                 license: str | None = None, dataset: str | None = None, name: str | None = None) -> Path:
    """Write a loaded stage (`load_stage`) as a self-contained folder with `README.md` and `results.json`."""
    out = Path(out)
    scores = checkpoint_scores(source) if source is not None else {}
    name = name or out.resolve().name
    # where it came from, as the run's own names (`grpo/best`): never the absolute path of this machine
    provenance = {}
    if source is not None:
        resolved = Path(source).resolve()
        is_ckpt = (resolved / ckpt.STATE_FILE).is_file()  # a training checkpoint: RUN/best; else the folder's name
        provenance = {"source": "/".join(resolved.parts[-2:]) if is_ckpt else resolved.name}
    # what it was trained on travels with the export (rvlf_model.json), for the notices and the card
    provenance["training_data"] = training_data.to_dict(
        training_data.read(source, cfg) if source is not None else training_data.from_config(cfg))

    def extra(tmp: Path) -> None:
        info = read_info(tmp)
        if scores:
            (tmp / "results.json").write_text(json.dumps(scores, indent=1) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(model_card(cfg, info, scores, name=name, license=license, dataset=dataset),
                                       encoding="utf-8")

    return save_exported(stage, cfg, out, source=source, base=base, info=provenance, extra=extra)


def export_model(checkpoint: str | Path, out: str | Path, *, base: str = "merge", license: str | None = None,
                 dataset: str | None = None, name: str | None = None) -> Path:
    """`rvlf export`: load `checkpoint` (any stage; a run folder means its `best`) and export it to `out`."""
    directory = checkpoint_dir(checkpoint)
    stage, _, cfg = load_stage(directory)
    return export_stage(stage, cfg, out, source=directory, base=base, license=license, dataset=dataset, name=name)
