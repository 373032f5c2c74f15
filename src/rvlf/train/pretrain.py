"""Stage 1 recipe: visual-language pre-training (Sec. 3.1, Table 9).

`L_pt = L_con + L_slt` (Eq. 11) on (keypoints, text) pairs; SGD lr 0.01, weight decay 0.001,
cosine schedule with 10% warm-up, batch 8, 200 epochs; dev evaluation with beam search 5 and
the best-dev-BLEU-4 checkpoint kept. The checkpoint's `encoder.*` weights initialise stage 2.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rvlf.data.dataset import collate
from rvlf.text.tokenizer import SLTTokenizer
from rvlf.train.common import finish_run, load_samples, split_dataset
from rvlf.train.recipe_configs import PretrainConfig
from rvlf.train.loop import Trainer
from rvlf.train.reproducibility import seed_everything
from rvlf.train.run_folder import Claim, claim
from rvlf.train.vlp_stage import PretrainStage, load_pretrained, make_tokenizer

log = logging.getLogger("rvlf.pretrain")


def run(cfg: PretrainConfig, out_dir: str | Path, *, max_steps: int | None = None, resume: bool = False,
        init: str | None = None, evaluate_test: bool = True, overwrite: bool = False,
        allow_config_change: bool = False) -> dict:
    """Train stage 1; returns dev/test scores. `init` continues from another stage-1 checkpoint's weights.

    `out_dir` belongs to this run (`rvlf.train.run_folder.claim`): it is locked; a folder that holds a
    run needs `resume` or `overwrite`; `resume` with changed settings needs `allow_config_change`."""
    with claim(out_dir, "pretrain", cfg, resume=resume, overwrite=overwrite,
               allow_config_change=allow_config_change) as folder:
        return _run(cfg, Path(out_dir), folder, max_steps=max_steps, init=init, evaluate_test=evaluate_test)


def _run(cfg: PretrainConfig, out_dir: Path, folder: Claim, *, max_steps: int | None, init: str | None,
         evaluate_test: bool) -> dict:
    resume = folder.resume
    seed_everything(cfg.train.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_split = load_samples(cfg.data)
    train_set = split_dataset(cfg.data, by_split, "train", use_dino=False)
    dev_set = split_dataset(cfg.data, by_split, "dev", use_dino=False)
    if resume and (out_dir / "last" / "tokenizer").exists():
        tokenizer = SLTTokenizer.load(out_dir / "last" / "tokenizer")
    else:
        tokenizer = make_tokenizer(cfg, [s.text for s in train_set.samples])
    stage = PretrainStage(cfg, tokenizer)
    if init:
        _, init_model, _ = load_pretrained(init)
        stage.model.load_state_dict(init_model.state_dict())
    trainer = Trainer(stage, model=stage.model, param_groups=stage.param_groups(), train_set=train_set,
                      dev_set=dev_set, collate_fn=collate, cfg=cfg.train, out_dir=out_dir, max_steps=max_steps,
                      resume=resume, config_changes=folder.changes, old_config=folder.old_config,
                      dev_max_samples=cfg.data.dev_max_samples, num_workers=cfg.data.num_workers)
    summary = trainer.fit()
    return finish_run(trainer, stage, cfg.data, by_split, out_dir, summary, use_dino=False,
                      evaluate_test=evaluate_test)
