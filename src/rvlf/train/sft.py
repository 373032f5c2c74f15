"""Stage 2 recipe: SLT-SFT (Sec. 3.2, Table 10).

The stage-1 skeleton encoder (frozen by default), the fusion of Eq. 12 with the DINOv2 face
and hand features, the MLP projector of Eq. 13, and a causal LM (Qwen3) with LoRA on q/v,
trained on the target tokens only (Eq. 14). AdamW, weight decay 0, two learning rates (LoRA
2e-4, projector and fusion 2e-5), cosine schedule with 8 warm-up epochs, batch 4, 40 epochs.

The model, its checkpoint layout and loading are the `rvlf.train.sign_lm` component's.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rvlf.config import freeze, load_config
from rvlf.data.dataset import collate
from rvlf.errors import ConfigError
from rvlf.models.skeleton import SkeletonEncoder
from rvlf.train.common import finish_run, load_samples
from rvlf.train.recipe_configs import SFTConfig, resumed_sft, with_stage1_encoder, with_widths
from rvlf.train.loop import Trainer
from rvlf.train.reproducibility import seed_everything
from rvlf.train.run_folder import Claim, claim
from rvlf.train.sign_lm import (SignLMStage, assemble, build_language_model, dino_width, encoder_from_stage1,
                                prepare_data, stage1_config, write_base_lm)

log = logging.getLogger("rvlf.sft")


def setting_name(cfg: SFTConfig) -> str:
    """The ablation row (Tables 5 and 6) this configuration is."""
    parts = []
    if not cfg.pretrained_encoder:
        parts.append("w/o pre-training")
    f = cfg.fusion
    if not f.use_face and not f.use_hand:
        parts.append("w/o DINOv2")
    elif not f.use_hand:
        parts.append("face only")
    elif not f.use_face:
        parts.append("hand only")
    return ", ".join(parts) or "full"


def run(cfg: SFTConfig, out_dir: str | Path, *, max_steps: int | None = None, resume: bool = False,
        init: str | None = None, evaluate_test: bool = True, overwrite: bool = False,
        allow_config_change: bool = False) -> dict:
    """Train SLT-SFT from a stage-1 checkpoint (`init`); returns dev/test scores.

    `out_dir` belongs to this run (`rvlf.train.run_folder.claim`): it is locked; a folder that holds a
    run needs `resume` or `overwrite`; `resume` with changed settings needs `allow_config_change`."""
    with claim(out_dir, "sft", cfg, resume=resume, overwrite=overwrite,
               allow_config_change=allow_config_change) as folder:
        return _run(cfg, Path(out_dir), folder, max_steps=max_steps, init=init, evaluate_test=evaluate_test)


def _run(cfg: SFTConfig, out_dir: Path, folder: Claim, *, max_steps: int | None, init: str | None,
         evaluate_test: bool) -> dict:
    resume = folder.resume
    seed_everything(cfg.train.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last = out_dir / "last"
    src = last if resume and (last / "config.yaml").is_file() else None
    stage1 = None
    # the config, resolved once: everything a resumed run needs (encoder shape, tokenizer, base LM) is in
    # its own checkpoint; a new run takes the encoder of its stage-1 checkpoint; the widths come from the data
    if src is not None:
        cfg = resumed_sft(cfg, load_config(SFTConfig, src / "config.yaml"))
    elif init:
        stage1, stage1_cfg = stage1_config(init)
        cfg = with_stage1_encoder(cfg, stage1_cfg)
    elif cfg.pretrained_encoder:
        raise ConfigError("sft needs --init STAGE1_CHECKPOINT (or --no-pretrain for a random encoder)")
    by_split = load_samples(cfg.data, dino_model=cfg.data.dino_model if cfg.fusion.use_face or cfg.fusion.use_hand
                            else None)
    train_set, dev_set = prepare_data(cfg, by_split)
    cfg = freeze(with_widths(cfg, dino_width(cfg, train_set)))

    encoder = encoder_from_stage1(stage1, cfg) if stage1 is not None else SkeletonEncoder(cfg.encoder)
    texts = [s.text for s in train_set.samples]
    lm, tokenizer = build_language_model(cfg.llm, texts, cfg.data.language(),
                                         base_lm_dir=src / "base_lm" if src else None,
                                         tokenizer_dir=src / "llm_tokenizer" if src else None)
    base_lm_dir = None
    if cfg.llm.tiny or cfg.llm.keep_base:  # an LM that exists nowhere else: keep it with every checkpoint
        base_lm_dir = out_dir / "base_lm"
        write_base_lm(base_lm_dir, lambda folder: lm.save_pretrained(str(folder)), keep_existing=src is not None)
    model = assemble(cfg, encoder, lm, tokenizer)
    model.cache_encoder_outputs(cfg.cache_encoder_outputs)
    stage = SignLMStage(cfg, model, base_lm_dir)
    trainer = Trainer(stage, model=model, param_groups=stage.param_groups(), train_set=train_set, dev_set=dev_set,
                      collate_fn=collate, cfg=cfg.train, out_dir=out_dir, max_steps=max_steps, resume=resume,
                      config_changes=folder.changes, old_config=folder.old_config,
                      dev_max_samples=cfg.data.dev_max_samples, num_workers=cfg.data.num_workers)
    summary = trainer.fit()
    summary["setting"] = setting_name(cfg)
    use_dino = cfg.fusion.use_face or cfg.fusion.use_hand
    return finish_run(trainer, stage, cfg.data, by_split, out_dir, summary, use_dino=use_dino,
                      evaluate_test=evaluate_test)
