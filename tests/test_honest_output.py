"""Honest output: a model folder records what it was trained on (training writes it, export carries it),
and `rvlf translate`, `SignTranslator` and the app's `process` say so when that is the synthetic demo
language (or unknown); an input that is not plausibly signing gets a warning beside its translation."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from helpers import CHEAP, REPO, TINY_STAGE1, cli, cli_output
from rvlf import SignTranslator
from rvlf.train.training_data import DEMO_NAME, RECORD_FILE, read


@pytest.fixture(scope="module")
def demo_corpus(tmp_path_factory):
    """A real (tiny) rvlf demo corpus: `generate_corpus` with 8/2/2 sentences, keypoints only."""
    from rvlf.synth.corpus import generate_corpus

    out = generate_corpus(tmp_path_factory.mktemp("demo") / "corpus", n_train=8, n_dev=2, n_test=2, dino=None,
                          progress=False)
    return out / "manifest.jsonl"


@pytest.fixture(scope="module")
def translator(tiny_grpo_run):
    return SignTranslator.from_pretrained(tiny_grpo_run / "best", device="cpu")


def _old_checkpoint(tiny_grpo_run, tmp_path, **data):
    """A copy of the tiny GRPO checkpoint as written before the record existed (no training_data.json),
    with `data.<key>: value` replaced in its config.yaml."""
    ckpt = tmp_path / "old"
    shutil.copytree(tiny_grpo_run / "best", ckpt)
    (ckpt / RECORD_FILE).unlink()
    lines = (ckpt / "config.yaml").read_text().splitlines()
    section = None
    for i, line in enumerate(lines):
        if not line.startswith(" "):
            section = line.rstrip(":")
        elif section == "data" and line.strip().split(":")[0] in data:
            key = line.strip().split(":")[0]
            lines[i] = f"  {key}: {data[key]}"
    (ckpt / "config.yaml").write_text("\n".join(lines) + "\n")
    return ckpt


def test_training_records_the_toy_corpus_and_says_nothing_more(tiny_grpo_run, translator):
    for stage in ("s1", "sft", "grpo"):
        record = json.loads((tiny_grpo_run.parent / stage / "best" / RECORD_FILE).read_text())
        assert record == {"name": "toy", "dataset": "manifest", "language": "en", "synthetic": False}, stage
    assert translator.training_data.synthetic is False and translator.notice is None
    out = translator.translate(np.zeros((20, 77, 3), np.float32) + [[[200.0, 200.0, 1.0]]])
    assert out.notice is None and isinstance(out, str)


def test_a_run_on_the_demo_corpus_records_it_and_every_output_says_so(demo_corpus, fixtures_dir, tmp_path):
    corpus = shutil.copytree(demo_corpus.parent, tmp_path / "corpus")
    demo_corpus = corpus / "manifest.jsonl"
    run = tmp_path / "s1"
    assert cli(["pretrain", "--config", str(REPO / "configs/demo/pretrain.yaml"), "--out", str(run),
                "--max-steps", "1", f"data.root={demo_corpus}", "train.batch_size=4", *CHEAP, *TINY_STAGE1]) == 0
    record = json.loads((run / "best" / RECORD_FILE).read_text())
    assert record == {"name": DEMO_NAME, "dataset": "manifest", "language": "en", "synthetic": True}

    # export carries it, the model card says it, and it holds when the corpus is gone
    rc, _, err = cli_output("export", run / "best", "--out", tmp_path / "exp")
    assert rc == 0, err
    shutil.rmtree(demo_corpus.parent)
    info = json.loads((tmp_path / "exp" / "rvlf_model.json").read_text())
    assert info["training_data"]["synthetic"] is True
    card = (tmp_path / "exp" / "README.md").read_text()
    assert "**Demo model.**" in card and "not a translation of real signing" in card

    # the CLI: one notice line before the translation, on stderr (stdout stays NAME<TAB>TEXT)
    rc, out, err = cli_output("translate", fixtures_dir / "holistic_97frames.pose", "--checkpoint", tmp_path / "exp",
                              "--device", "cpu")
    assert rc == 0, err
    assert out.startswith("holistic_97frames\t") and "notice" not in out
    assert ("rvlf translate: notice: this model was trained on the rvlf synthetic demo language" in err
            and "not a translation of real signing" in err), err

    # the API: on the model and on every result
    model = SignTranslator.from_pretrained(tmp_path / "exp", device="cpu")
    assert model.training_data.synthetic is True
    text = model.translate(fixtures_dir / "holistic_97frames.pose")
    assert text == out.split("\t", 1)[1].rstrip("\n") and "synthetic demo language" in text.notice
    [nbest] = model.translate([fixtures_dir / "holistic_97frames.pose"], num_beams=2, return_scores=True)
    assert nbest.notice == text.notice and nbest.warnings == ()


@pytest.mark.parametrize("data, name, synthetic, notice", [
    ({"root": "DEMO"}, DEMO_NAME, True, "synthetic demo language"),
    ({"root": "no/such/corpus/manifest.jsonl"}, "unknown", None, "does not record what it was trained on"),
    ({"dataset": "phoenix", "root": "no/such/phoenix"}, "PHOENIX-2014T", False, None),
])
def test_old_checkpoints_are_judged_from_their_config(tiny_grpo_run, demo_corpus, tmp_path, data, name, synthetic,
                                                      notice):
    from rvlf.inference.loading import load_stage_config

    data = {k: (str(demo_corpus) if v == "DEMO" else v) for k, v in data.items()}
    ckpt = _old_checkpoint(tiny_grpo_run, tmp_path, **data)
    record = read(ckpt, load_stage_config(ckpt))
    assert (record.name, record.synthetic) == (name, synthetic)
    assert record.how == ("unknown" if synthetic is None else "inferred from config.yaml")
    assert (record.notice() is None) if notice is None else (notice in record.notice())
    from rvlf.inference.export import model_card
    from rvlf.train.training_data import to_dict

    info = {"stage": "grpo", "language": "en", "language_model": "merged", "training_data": to_dict(record)}
    card = model_card(load_stage_config(ckpt), info, {}, name="m")
    assert ("**Demo model.**" in card) == bool(synthetic)
    assert ("**Training data unknown.**" in card) == (synthetic is None)
    if synthetic:  # the page and the API of an old demo checkpoint say it too
        from rvlf.inference.app import process

        model = SignTranslator.from_pretrained(ckpt, device="cpu")
        res = process(model, REPO.parent / "shared" / "fixtures" / "holistic_97frames.pose", num_beams=1,
                      workdir=tmp_path / "work")
        assert not res.error and "synthetic demo language" in res.notice
        assert res.warnings_markdown().startswith("**Not a real translation**")
        assert "Not a real translation" in res.status


def test_a_still_image_gets_a_warning_in_the_cli_the_api_and_the_page(translator, tiny_grpo_run, fixtures_dir,
                                                                       tmp_path):
    from rvlf.inference.app import process

    image = fixtures_dir / "human_all_parts.png"
    rc, out, err = cli_output("translate", image, "--checkpoint", tiny_grpo_run / "best", "--device", "cpu")
    assert rc == 0 and out.startswith("human_all_parts\t"), err
    assert f"rvlf translate: {image}: warning: only 1 frame (a still image): too short to be signing" in err, err
    text = translator.translate(image)
    assert text.warnings == ("only 1 frame (a still image): too short to be signing",)
    assert text == out.split("\t", 1)[1].rstrip("\n")
    res = process(translator, image, num_beams=2, workdir=tmp_path / "work")
    assert not res.error and res.warnings == list(text.warnings)
    assert "**Warning**: only 1 frame (a still image)" in res.warnings_markdown()
    assert "Warning: only 1 frame" in res.status


def test_keypoints_without_hands_or_with_few_frames_are_warned_about(translator, fixtures_dir):
    from rvlf.data.keypoints import PARTS
    from rvlf.data.poses import read_keypoints

    kp = read_keypoints(fixtures_dir / "holistic_97frames.pose")
    assert translator.translate(kp).warnings == ()  # a real signer: nothing to say
    no_hands = kp.copy()
    no_hands[:, PARTS["left_hand"].start:PARTS["right_hand"].stop, 2] = 0.0
    assert translator.translate(no_hands).warnings == (
        "no hand found in any of its 97 frames: signing needs hands",)
    half_gone = kp.copy()
    half_gone[:68, PARTS["body"], 2] = 0.0  # the signer's body lost in 68 of the 97 frames
    assert translator.translate(half_gone).warnings == (
        "the signer's body is found in only 30% of its 97 frames",)
    from rvlf.data.crops import part_found

    with_hands = np.flatnonzero(part_found(kp)[:, 2:].any(1))[:5]
    few = translator.translate(kp[with_hands], return_scores=True)
    assert few.warnings == ("only 5 frames (under 12 frames, a fraction of a second): too short to be signing",)
    assert len(few) >= 1 and all(isinstance(h.text, str) for h in few)  # translated all the same
    # one frame (a still image) without hands: said in words that fit one frame
    assert translator.translate(no_hands[:1]).warnings == (
        "only 1 frame (a still image): too short to be signing", "no hand found in its only frame: signing needs hands")
    from rvlf.data.crops import NoSignerError, check_signer

    for frames, words in ((1, "is not detected in its only frame"), (4, "is detected in none of its 4 frames")):
        with pytest.raises(NoSignerError, match=f"no signer found: the body {words}$"):
            check_signer(np.zeros((frames, 77, 3), np.float32), "x.npz")
