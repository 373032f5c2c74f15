"""Stage 1 end to end (issue 3): a 32-sample overfit on CPU, and the checkpoint stage 2 loads."""

from __future__ import annotations

import json
import time

import pytest
import torch

from helpers import REPO, write_toy_corpus

# A small model that memorises the 32 toy sentences reliably (BLEU-4 100 for seeds 0-2,
# about 35 s of one CPU core): AdamW instead of the paper's SGD, no dropout or label smoothing.
OVERFIT = [
    "data.dev_split=train",  # dev = train: the overfit check
    "data.dev_max_samples=0",
    "model.d_model=64", "model.encoder.d_model=64", "model.ff_dim=128", "model.encoder.ff_dim=128",
    "model.contrastive_dim=64", "model.dropout=0.0", "model.encoder.dropout=0.0", "model.label_smoothing=0.0",
    "train.epochs=60", "train.batch_size=8", "train.optimizer=adamw", "train.lr=0.002", "train.weight_decay=0.0",
    "train.warmup_epochs=1", "train.eval_every_epochs=60", "train.num_beams=1", "train.max_new_tokens=16",
    "train.progress=false", "train.seed=0",
]


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory):
    """(run folder, summary, seconds) of one stage-1 overfit run on the 32 training samples."""
    from rvlf.config import load_config
    from rvlf.train.recipe_configs import PretrainConfig
    from rvlf.train.pretrain import run

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("stage1")
    manifest = write_toy_corpus(root / "toy", n_train=32)
    cfg = load_config(PretrainConfig, REPO / "configs/demo/pretrain.yaml", [f"data.root={manifest}", *OVERFIT])
    t0 = time.perf_counter()
    summary = run(cfg, root / "run")
    seconds = time.perf_counter() - t0
    print(f"\nstage-1 overfit: {summary['steps']} steps, best dev=train BLEU-4 {summary['best_bleu4']:.2f}, "
          f"{seconds:.1f} s wall")
    return root / "run", summary, seconds


@pytest.mark.slow
def test_overfit_32_samples_reaches_bleu4_90(overfit_run):
    out, summary, _ = overfit_run
    assert summary["steps"] == 60 * 4  # 32 samples / batch 8 = 4 steps an epoch
    assert summary["best_bleu4"] >= 90.0, summary
    results = json.loads((out / "results.json").read_text())
    assert results["best_bleu4"] == pytest.approx(summary["best_bleu4"])
    assert set(results["test"]) >= {"bleu1", "bleu4", "rouge_l", "reward"}
    # test translations: id, hypothesis, reference
    lines = (out / "test_translations.tsv").read_text().splitlines()
    assert len(lines) == 8 and all(len(line.split("\t")) == 3 for line in lines)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in metrics if "loss" in m]
    assert losses[-1] < 0.5 * losses[0]
    assert any("dev_bleu4" in m for m in metrics)


@pytest.mark.slow
def test_best_checkpoint_reproduces_its_score(overfit_run):
    """The saved best/ weights (not the in-memory model) translate the training texts."""
    from rvlf.data.dataset import collate
    from rvlf.train.common import load_samples, split_dataset
    from rvlf.inference.loading import load_stage
    from rvlf.train.evaluation import evaluate_stage

    out, summary, _ = overfit_run
    stage, model, cfg = load_stage(out / "best")
    assert stage.name == "pretrain"
    assert cfg.model.d_model == 64 and cfg.data.dev_split == "train"
    train = split_dataset(cfg.data, load_samples(cfg.data), "train", use_dino=False)
    res = evaluate_stage(stage, model, train, collate_fn=collate, batch_size=8, num_beams=1, max_new_tokens=16)
    assert res.metrics["bleu4"] == pytest.approx(summary["best_bleu4"], abs=1e-6)
    assert sum(h == r for h, r in zip(res.hyps, res.refs)) >= 24  # most sentences word for word


@pytest.mark.slow
def test_checkpoint_holds_the_encoder_stage2_loads(overfit_run):
    from rvlf.models.skeleton import SkeletonEncoder
    from rvlf.train import checkpoint as ckpt
    from rvlf.train.recipe_configs import SFTConfig
    from rvlf.train.recipe_configs import with_stage1_encoder
    from rvlf.train.sign_lm import encoder_from_stage1, stage1_config

    out, _, _ = overfit_run
    weights = ckpt.load_weights(out / "best" / ckpt.MODEL_FILE)
    enc = {k[len("encoder."):]: v for k, v in weights.items() if k.startswith("encoder.")}
    assert enc and any(k.startswith("gcn.") for k in enc) and any(k.startswith("transformer.") for k in enc)
    # the text side is in the checkpoint too, but stage 2 takes the encoder only
    assert any(k.startswith("mbart.") for k in weights)

    assert SFTConfig().encoder.d_model == 512  # the paper's default until --init replaces it
    directory, stage1_cfg = stage1_config(out / "best")
    cfg = with_stage1_encoder(SFTConfig(), stage1_cfg)
    encoder = encoder_from_stage1(directory, cfg)
    assert isinstance(encoder, SkeletonEncoder)
    from rvlf.config import load_config
    from rvlf.train.recipe_configs import PretrainConfig

    stage1_encoder = load_config(PretrainConfig, out / "best" / "config.yaml").model.encoder
    assert cfg.encoder == stage1_encoder and cfg.encoder.d_model == 64  # the shape comes from stage 1
    state = encoder.state_dict()
    assert set(state) == set(enc)
    for k, v in enc.items():
        assert torch.equal(state[k], v), k

    # the run folder itself (-> its last/) is accepted as --init too
    directory, stage1_cfg = stage1_config(out)
    last = encoder_from_stage1(directory, with_stage1_encoder(SFTConfig(), stage1_cfg)).state_dict()
    last_weights = ckpt.load_weights(out / "last" / ckpt.MODEL_FILE)
    assert all(torch.equal(last[k], last_weights[f"encoder.{k}"]) for k in last)

    # Table 5 "w/o pre-training": same shape, random weights
    random_cfg = with_stage1_encoder(SFTConfig(pretrained_encoder=False), stage1_cfg)
    random_state = encoder_from_stage1(directory, random_cfg).state_dict()
    assert set(random_state) == set(enc)
    assert any(not torch.equal(random_state[k], v) for k, v in enc.items() if v.is_floating_point() and v.numel() > 1)

    # and the encoder runs on keypoints of the corpus shape
    with torch.no_grad():
        z, mask = encoder.eval()(torch.randn(2, 12, 77, 3), torch.ones(2, 12, dtype=torch.bool))
    assert z.shape == (2, 12, 64) and mask.all()


def test_encoder_from_stage1_rejects_a_folder_that_is_no_checkpoint(tmp_path):
    from rvlf.errors import InputFileError
    from rvlf.train.sign_lm import stage1_config

    with pytest.raises(InputFileError, match=str(tmp_path / "nope")):
        stage1_config(tmp_path / "nope")
