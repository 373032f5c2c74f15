"""Stage 2 end to end through the CLI (issue 5): `rvlf sft --init STAGE1` with each ablation switch.

Each switch must be recorded in the run folder (results.json "setting", config.yaml) and must
change what the model sees: the encoder weights (--no-pretrain) or which DINOv2 crops reach
the fused features (--no-dino, --face-only, --hand-only).
"""

from __future__ import annotations

import json

import pytest
import torch

from helpers import CHEAP, REPO, cli, tiny_runs

# six recipe runs (a tiny stage 1, five SFT settings): about 45 s of CPU in all
pytestmark = pytest.mark.slow

SETTINGS = {
    "full": ([], "full", True, True, True),
    "no_pretrain": (["--no-pretrain"], "w/o pre-training", False, True, True),
    "no_dino": (["--no-dino"], "w/o DINOv2", True, False, False),
    "face_only": (["--face-only"], "face only", True, True, False),
    "hand_only": (["--hand-only"], "hand only", True, False, True),
}



@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    """(manifest, stage-1 run folder): a tiny stage-1 model trained for 3 steps."""
    manifest, s1, _ = tiny_runs(tmp_path_factory.mktemp("sft"))
    return manifest, s1


@pytest.fixture(scope="module")
def sft_runs(stage1, tmp_path_factory):
    """One `rvlf sft --max-steps 1` run folder per ablation setting."""
    manifest, s1 = stage1
    root = tmp_path_factory.mktemp("sft_runs")
    runs = {}
    for name, (flags, *_rest) in SETTINGS.items():
        out = root / name
        rc = cli(["sft", "--config", str(REPO / "configs/demo/sft.yaml"), "--out", str(out),
                   "--init", str(s1 / "last"), "--max-steps", "1", *flags, f"data.root={manifest}",
                   "train.batch_size=4", *CHEAP])
        assert rc == 0, name
        runs[name] = out
    return runs


def _weights(folder):
    from rvlf.train import checkpoint as ckpt

    return ckpt.load_weights(folder / ckpt.MODEL_FILE)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_run_folder_records_the_setting(sft_runs, name):
    from rvlf.config import load_config, read_yaml
    from rvlf.train.recipe_configs import SFTConfig

    _, setting, pretrained, face, hand = SETTINGS[name]
    out = sft_runs[name]
    results = json.loads((out / "results.json").read_text())
    assert results["setting"] == setting
    assert results["steps"] == 1
    assert set(results["test"]) >= {"bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "reward"}
    for folder in (out / "last", out / "best"):
        assert read_yaml(folder / "config.yaml")["stage"] == "sft"
        cfg = load_config(SFTConfig, folder / "config.yaml")
        assert (cfg.pretrained_encoder, cfg.fusion.use_face, cfg.fusion.use_hand) == (pretrained, face, hand)
        assert cfg.encoder.d_model == 32 and cfg.fusion.sign_dim == 32  # the stage-1 encoder's shape
        if face or hand:
            assert cfg.fusion.dino_dim == 16  # the toy corpus's feature width
        assert (folder / "llm_tokenizer").is_dir() and (folder / "base_lm" / "config.json").is_file()
    # the checkpoint holds exactly the parts the switch leaves in the model
    keys = set(_weights(out / "last"))
    assert any(k.startswith("lora.") for k in keys) and any(k.startswith("fusion.projector.") for k in keys)
    assert any(k.startswith("encoder.") for k in keys)
    assert any(k.startswith("fusion.face_proj.") for k in keys) == face
    assert any(k.startswith("fusion.hand_proj.") for k in keys) == hand


def test_no_pretrain_uses_a_random_encoder(stage1, sft_runs):
    _, s1 = stage1
    stage1_enc = {k: v for k, v in _weights(s1 / "last").items() if k.startswith("encoder.")}
    floats = [k for k, v in stage1_enc.items() if v.is_floating_point() and v.numel() > 1]
    for name in ("full", "no_dino", "face_only", "hand_only"):  # frozen stage-1 encoder, bit for bit
        enc = {k: v for k, v in _weights(sft_runs[name] / "last").items() if k.startswith("encoder.")}
        assert set(enc) == set(stage1_enc)
        assert all(torch.equal(enc[k], stage1_enc[k]) for k in stage1_enc), name
    random_enc = {k: v for k, v in _weights(sft_runs["no_pretrain"] / "last").items() if k.startswith("encoder.")}
    assert set(random_enc) == set(stage1_enc)
    differ = [k for k in floats if not torch.equal(random_enc[k], stage1_enc[k])]
    assert len(differ) > len(floats) // 2


@pytest.mark.parametrize("name", ["full", "face_only", "hand_only"])
def test_switches_change_which_crops_the_model_sees(stage1, sft_runs, name):
    """Perturbing the face crop / the hand crops changes the fused sign embeddings iff that cue is on."""
    from rvlf.data.dataset import collate
    from rvlf.models.fusion import FACE, LEFT_HAND, RIGHT_HAND
    from rvlf.train.common import load_samples, split_dataset
    from rvlf.train.sign_lm import load_sft

    _, _, _, face, hand = SETTINGS[name]
    cfg, model = load_sft(sft_runs[name] / "last")
    model.eval()
    data = split_dataset(cfg.data, load_samples(cfg.data), "dev", use_dino=True)
    batch = collate([data[i] for i in range(2)])
    kp, fm, dino = batch["keypoints"], batch["frame_mask"], batch["dino"]
    assert dino is not None and dino.shape[2:] == (3, 16)

    def embed(d):
        with torch.no_grad():
            return model.encode_signs(kp, fm, d)[0]

    base = embed(dino)
    noisy_face, noisy_hands = dino.clone(), dino.clone()
    noisy_face[:, :, FACE] += torch.randn_like(dino[:, :, FACE])
    noisy_hands[:, :, LEFT_HAND:RIGHT_HAND + 1] += torch.randn_like(dino[:, :, LEFT_HAND:RIGHT_HAND + 1])
    assert (not torch.allclose(embed(noisy_face), base)) == face
    assert (not torch.allclose(embed(noisy_hands), base)) == hand
    assert not torch.allclose(embed(None), base)  # the crops that are on contribute


def test_no_dino_sees_the_skeleton_only(sft_runs):
    """--no-dino: no DINOv2 features are read and the sign embeddings are MLP(Z_s) alone."""
    from rvlf.data.dataset import collate
    from rvlf.train.common import load_samples, split_dataset
    from rvlf.train.sign_lm import load_sft

    cfg, model = load_sft(sft_runs["no_dino"] / "last")
    model.eval()
    assert model.fusion.face_proj is None and model.fusion.hand_proj is None
    data = split_dataset(cfg.data, load_samples(cfg.data), "dev", use_dino=cfg.fusion.use_face or cfg.fusion.use_hand)
    batch = collate([data[i] for i in range(2)])
    assert batch["dino"] is None  # the run never loads the crops
    kp, fm = batch["keypoints"], batch["frame_mask"]
    with torch.no_grad():
        z, mask = model.encode_signs(kp, fm, None)
        z_s, _ = model.encoder(kp, fm)
        assert torch.allclose(z, model.fusion.projector(z_s))
    assert mask.equal(fm)


def test_ablation_switches_exclude_each_other(stage1, tmp_path, capsys):
    manifest, s1 = stage1
    rc = cli(["sft", "--config", str(REPO / "configs/demo/sft.yaml"), "--out", str(tmp_path / "r"),
               "--init", str(s1 / "last"), "--face-only", "--hand-only", f"data.root={manifest}"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rvlf sft: error:") and "--face-only" in err[-1]
    assert not (tmp_path / "r" / "last").exists()


def test_sft_without_init_needs_no_pretrain(stage1, tmp_path, capsys):
    manifest, _ = stage1
    rc = cli(["sft", "--config", str(REPO / "configs/demo/sft.yaml"), "--out", str(tmp_path / "r"),
               f"data.root={manifest}"])
    assert rc == 2
    assert "--init" in capsys.readouterr().err


def test_evaluate_scores_an_sft_checkpoint(sft_runs, capsys):
    capsys.readouterr()
    rc = cli(["evaluate", "--checkpoint", str(sft_runs["full"] / "best"), "--split", "test", "--num-beams", "1"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["split"] == "test" and out["samples"] == 4
    for key in ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "reward"):
        assert 0.0 <= out[key] <= 100.0, key
