"""Feature files record the DINOv2 they were extracted with; training and translation notice another one."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from helpers import REPO, cli_output
from rvlf.config import DataConfig
from rvlf.data import dino_id
from rvlf.data.features import load_video_features, save_tiny_dinov2
from rvlf.errors import ConfigError

TINY = {"hidden_size": 16, "intermediate_size": 32}  # the width of tests/conftest.py's tiny GRPO run


def _cli(*argv) -> tuple[int, str, str]:
    return cli_output(*argv)


@pytest.fixture(scope="module")
def models(tmp_path_factory, fixtures_dir):
    """Tiny DINOv2s A (seed 0, as the tiny GRPO run's), a copy of A, B (seed 1, same config), and
    real `rvlf extract` files of the Mac frame folder (Uni-Sign pkl keypoints) made with A and B."""
    tmp = tmp_path_factory.mktemp("dino_id")
    a = save_tiny_dinov2(tmp / "dino_a", **TINY)
    b = save_tiny_dinov2(tmp / "dino_b", seed=1, **TINY)
    copy = shutil.copytree(a, tmp / "copy_of_a")
    feats = {}
    for name, model in (("a", a), ("b", b)):
        rc, _, err = _cli("extract", fixtures_dir / "real_formats" / "frames_macos_copy", "--out", tmp / name,
                          "--keypoints", fixtures_dir / "real_formats" / "unisign_pose_lists.pkl", "--dino", model)
        assert rc == 0, err
        feats[name] = tmp / name / "frames_macos_copy.npz"
    return {"tmp": tmp, "a": a, "b": b, "copy": copy, "feats": feats}


def test_same_model_by_name_weights_or_architecture(models, tmp_path):
    a, b, copy = str(models["a"]), str(models["b"]), str(models["copy"])
    meta = load_video_features(models["feats"]["a"])["meta"]
    assert meta["dino_model"] == a and meta["dino_fingerprint"] == dino_id.fingerprint(a)
    assert dino_id.same_model(a, a + "/")[0] == "same"
    assert dino_id.same_model(a, copy) == ("same", "the same weights")          # a copy, e.g. a checkpoint's dinov2/
    assert dino_id.same_model(a, b) == ("differ", "the same tensors with other values")
    deeper = save_tiny_dinov2(tmp_path / "deeper", num_hidden_layers=2, **TINY)
    verdict, why = dino_id.same_model(a, str(deeper))
    assert verdict == "differ" and "num_hidden_layers 1 vs 2" in why
    # another image size (other position embeddings), the same width: another model for sure, by config...
    small = save_tiny_dinov2(tmp_path / "small", image_size=56, **TINY)
    verdict, why = dino_id.same_model(a, str(small))
    assert verdict == "differ" and "image_size 224 vs 56" in why
    # ... and by the tensors' shapes alone (a folder gone, its fingerprint recorded in a feature file)
    verdict, why = dino_id.same_model(a, "/nowhere/dino", fingerprint_b=dino_id.fingerprint(str(small)))
    assert (verdict, why) == ("differ", "other tensors (names or shapes)")
    # a hub id that is not in the cache (tests run offline): cannot tell
    assert dino_id.same_model(a, "facebook/dinov2-small")[0] == "unknown"
    # the features' recorded fingerprint is enough when the folder they name is gone
    assert dino_id.same_model(copy, "/nowhere/dino", fingerprint_b=meta["dino_fingerprint"])[0] == "same"


def _manifest(models, which: str):
    root = models["tmp"] / f"corpus_{which}"
    root.mkdir(exist_ok=True)
    lines = [json.dumps({"id": f"s{i}", "split": split, "text": "hello there", "lang": "en",
                         "features": str(models["feats"][which])})
             for i, split in enumerate(["train", "train", "dev", "test"])]
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root / "manifest.jsonl"


def test_training_check_warns_or_stops_before_step_1(models, caplog):
    from rvlf.train.common import load_samples

    manifest = _manifest(models, "a")

    def load(model):
        return load_samples(DataConfig(dataset="manifest", root=str(manifest), dino_model=str(model)),
                            dino_model=str(model))

    for same in (models["a"], models["copy"]):   # its own name, or a copy with the same weights: silent
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="rvlf.data"):
            load(same)
        assert "dino_model" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rvlf.data"):
        load("facebook/dinov2-small")            # cannot tell (not cached): one warning line
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"data.dino_model is 'facebook/dinov2-small' but 4 of 4 feature files were extracted "
                           f"with '{models['a']}' (e.g. {models['feats']['a']})")
    assert "rvlf translate VIDEO" in line and "\n" not in line
    with pytest.raises(ConfigError, match="different DINOv2 models .the same tensors with other values"):
        load(models["b"])                        # another model for sure


def test_sft_with_another_dinov2_stops_before_step_1(models, tmp_path):
    out = tmp_path / "sft"
    rc, _, err = _cli("sft", "--config", REPO / "configs/demo/sft.yaml", "--no-pretrain", "--out", out,
                      "--max-steps", "1", f"data.root={_manifest(models, 'a')}", f"data.dino_model={models['b']}")
    assert rc == 2, err
    (line,) = err.strip().splitlines()
    assert f"data.dino_model is '{models['b']}'" in line and str(models["feats"]["a"]) in line
    assert not (out / "last").exists()


def test_translating_features_of_another_dinov2_is_refused(models, tiny_grpo_run, caplog):
    """Features of a DINOv2 that surely is another model translate to garbage: refused, naming both."""
    from rvlf import SignTranslator
    from rvlf.errors import InputFileError

    model = SignTranslator.from_pretrained(tiny_grpo_run / "best", device="cpu")
    assert model.dino_model.endswith("dinov2")              # the checkpoint's copy of its seed-0 tiny DINOv2
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rvlf.inference.pipeline"):
        model.prepare(models["feats"]["a"])                  # the same weights as the checkpoint's: silent
    assert caplog.text == ""
    with pytest.raises(InputFileError) as err:
        model.prepare(models["feats"]["b"])
    line = str(err.value)
    assert line.startswith(f"{models['feats']['b']}: its DINOv2 features were extracted with {models['b']}, another "
                           f"model than the checkpoint's {model.dino_model} (")
    assert f"re-extract it with --dino {model.dino_model}" in line
    # rvlf translate: the same line, exit 2; among other inputs it is named and the others translated (exit 1)
    rc, out, stderr = _cli("translate", models["feats"]["b"], "--checkpoint", tiny_grpo_run / "best", "--device", "cpu")
    assert rc == 2 and out == "" and line in stderr
    rc, out, stderr = _cli("translate", models["feats"]["b"], models["feats"]["a"], "--checkpoint",
                           tiny_grpo_run / "best", "--device", "cpu")
    # both files are named frames_macos_copy.npz: each is named by its path (rvlf translate's unique ids)
    assert rc == 1 and out.startswith(f"{models['feats']['a']}\t") and f"failed: {line}" in stderr
