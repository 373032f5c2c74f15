"""`rvlf translate --nbest K` and `--json`, and its models loaded once for all inputs (tiny real runs)."""

from __future__ import annotations

import json

import pytest

from helpers import tiny_runs
from rvlf.cli import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A toy corpus (16-dim DINOv2 features), 3 stage-1 steps and 2 SFT steps."""
    root = tmp_path_factory.mktemp("nbest")
    tiny_runs(root, sft_steps=2)
    return root


def _translate(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["translate", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("stage", ["sft", "s1"])  # the sign LM (stages 2-3) and stage 1's VLP decoder
def test_nbest_lists_the_beams_best_first_with_scores(runs, fixtures_dir, capsys, stage):
    pose, feats = fixtures_dir / "holistic_97frames.pose", next((runs / "toy" / "features").glob("*.npz"))
    ckpt = runs / stage / "last"
    rc, plain, _ = _translate(capsys, pose, feats, "--checkpoint", ckpt, "--num-beams", "3")
    assert rc == 0
    best = dict(line.split("\t") for line in plain.strip().splitlines())
    rc, out, _ = _translate(capsys, pose, feats, "--checkpoint", ckpt, "--num-beams", "3", "--nbest", "3")
    assert rc == 0
    rows = [line.split("\t") for line in out.strip().splitlines()]
    assert all(len(r) == 4 for r in rows), rows  # NAME RANK SCORE TEXT
    for name in (pose.stem, feats.stem):
        mine = [r for r in rows if r[0] == name]
        assert 1 <= len(mine) <= 3
        assert [int(r[1]) for r in mine] == list(range(1, len(mine) + 1))
        scores = [float(r[2]) for r in mine]
        assert scores == sorted(scores, reverse=True) and all(s <= 0 for s in scores)
        assert len({r[3] for r in mine}) == len(mine)  # distinct texts
        assert mine[0][3] == best[name]  # rank 1 is the plain translation
    assert [r[0] for r in rows] == sorted((r[0] for r in rows), key=[pose.stem, feats.stem].index)  # input order


def test_nbest_wider_than_the_beam_is_one_line_before_any_work(runs, fixtures_dir, capsys):
    rc, out, err = _translate(capsys, fixtures_dir / "holistic_97frames.pose", "--checkpoint", runs / "sft" / "last",
                              "--nbest", "6")  # the checkpoint's beam is 5
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and "--nbest 6" in err and "--num-beams 6" in err


def test_json_is_one_object_per_input_in_order_with_errors_in_place(runs, fixtures_dir, tmp_path, capsys):
    pose, feats = fixtures_dir / "holistic_97frames.pose", next((runs / "toy" / "features").glob("*.npz"))
    missing = tmp_path / "nope.mp4"
    ckpt = runs / "sft" / "last"
    rc, plain, _ = _translate(capsys, pose, "--checkpoint", ckpt, "--num-beams", "2")
    rc, out, err = _translate(capsys, pose, missing, feats, "--checkpoint", ckpt, "--num-beams", "2", "--json")
    assert rc == 1  # one input could not be read: named on stderr, the others translated
    records = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["source"] for r in records] == [str(pose), str(missing), str(feats)]
    for r in records:
        assert set(r) == {"id", "source", "text", "nbest", "nbest_merged", "timings", "warnings", "notice", "error"}
        assert isinstance(r["warnings"], list)
        assert r["notice"] is None  # the toy corpus is no demo language
    first, bad, third = records
    assert first["id"] == pose.stem and first["text"] == plain.strip().split("\t")[1] and first["error"] is None
    assert any("keypoints only" in w for w in first["warnings"])  # what stderr says reaches the JSON too
    assert 1 <= len(first["nbest"]) <= 2 and first["nbest"][0]["text"] == first["text"]  # the whole beam of 2
    assert len(first["nbest"]) + first["nbest_merged"] == 2
    assert first["timings"]["prepare_s"] >= 0 and first["timings"]["decode_s"] > 0
    assert first["timings"]["decoded_together"] == 2
    assert bad["text"] is None and bad["nbest"] == [] and "nope.mp4" in bad["error"] and "not found" in bad["error"]
    assert third["id"] == feats.stem and third["text"] is not None
    assert "nope.mp4" in err
    # --nbest K caps the JSON's n-best too
    rc, out, _ = _translate(capsys, pose, "--checkpoint", ckpt, "--num-beams", "3", "--nbest", "1", "--json")
    [record] = [json.loads(line) for line in out.strip().splitlines()]
    assert rc == 0 and len(record["nbest"]) == 1


def test_models_are_loaded_once_for_many_inputs(runs, fixtures_dir, tmp_path, capsys, monkeypatch):
    import rvlf.data.features as features
    import rvlf.inference.loading as inference
    from rvlf.inference.pipeline import dino_encoder

    calls = {"stage": 0, "dino": 0}
    dtypes = []
    load_stage, encoder = inference.load_stage, features.DinoEncoder

    def counting_load_stage(*a, **k):
        calls["stage"] += 1
        return load_stage(*a, **k)

    class CountingEncoder(encoder):
        def __init__(self, *a, **k):
            calls["dino"] += 1
            super().__init__(*a, **k)
            dtypes.append(self.dtype)

    monkeypatch.setattr(inference, "load_stage", counting_load_stage)
    monkeypatch.setattr(features, "DinoEncoder", CountingEncoder)
    dino_encoder.cache_clear()
    dino = features.save_tiny_dinov2(tmp_path / "dino16", hidden_size=16, intermediate_size=32)
    video = fixtures_dir / "signer_58frames.mp4"
    frames = tmp_path / "frames"  # a second input of another kind: a frame folder cut from the same video
    frames.mkdir()
    from PIL import Image

    from rvlf.data.video import iter_frames

    for t, frame in enumerate(iter_frames(video)):
        if t >= 12:
            break
        Image.fromarray(frame).save(frames / f"{t:04d}.png")
    rc, out, err = _translate(capsys, video, frames, "--checkpoint", runs / "sft" / "last", "--dino", dino,
                            "--num-beams", "2")
    dino_encoder.cache_clear()
    assert rc == 0 and [line.split("\t")[0] for line in out.strip().splitlines()] == [video.stem, "frames"], err
    assert calls == {"stage": 1, "dino": 1}
    assert dtypes == [features.inference_dtype("cpu")]  # bf16 on a CPU with native bf16 (tests/test_bf16.py)


def test_a_short_nbest_says_how_many_hypotheses_decode_to_one_text(runs, fixtures_dir, tmp_path, capsys):
    """Beam search keeps distinct token sequences; several can decode to one text (on the real .pose fixtures
    the tiny SFT model's beam of 5 gives "fast fast ..." texts that differ only in a newline). `--nbest 5`
    then lists fewer lines, and a note on stderr says how many were merged; `--json` has `nbest_merged`.
    Variants: the Python API's `NBest.merged`, the app's n-best table and status line, and a wider beam."""
    from rvlf import SignTranslator
    from rvlf.inference.app import process
    from rvlf.text.files import one_line

    poses = [fixtures_dir / "holistic_97frames.pose", fixtures_dir / "holistic_130frames.pose"]
    ckpt = runs / "sft" / "last"
    rc, out, err = _translate(capsys, *poses, "--checkpoint", ckpt, "--num-beams", "5", "--nbest", "5")
    assert rc == 0
    listed = {p.stem: [r.split("\t") for r in out.splitlines() if r.startswith(p.stem + "\t")] for p in poses}
    rc, js, _ = _translate(capsys, *poses, "--checkpoint", ckpt, "--num-beams", "5", "--json")
    records = {r["id"]: r for r in map(json.loads, js.splitlines())}
    assert any(len(rows) < 5 for rows in listed.values()), listed  # the fixtures do merge hypotheses here
    for p in poses:
        rows, record = listed[p.stem], records[p.stem]
        assert len({r[3] for r in rows}) == len(rows) and len(rows) + record["nbest_merged"] == 5
        assert [r[3] for r in rows] == [one_line(h["text"]) for h in record["nbest"]]
        notes = [line for line in err.splitlines() if line.startswith(f"rvlf translate: {p}: note: ")]
        if len(rows) < 5:
            assert notes == [f"rvlf translate: {p}: note: {len(rows)} of the 5 hypotheses asked for (--nbest 5): "
                             f"{5 - len(rows)} of the beam's 5 decode to the text of a better one (listed once, "
                             "with the best score); a wider --num-beams may find more distinct texts"], err
        else:
            assert notes == []
    short = min(poses, key=lambda p: len(listed[p.stem]))
    model = SignTranslator.from_pretrained(ckpt, device="cpu")
    nbest = model.translate(short, num_beams=5, return_scores=True)
    assert [h.text for h in nbest] == [h["text"] for h in records[short.stem]["nbest"]]
    assert nbest.merged == 5 - len(nbest) > 0 and len({one_line(h.text) for h in nbest}) == len(nbest)
    res = process(model, short, num_beams=5, workdir=tmp_path / "app")
    assert [row[1] for row in res.nbest] == [h.text for h in nbest] and res.nbest_merged == nbest.merged
    assert f"The n-best lists {len(nbest)} of the beam's 5 hypotheses: {nbest.merged} decode to" in res.status
    wide = model.translate(short, num_beams=10, return_scores=True)  # a wider beam finds more distinct texts
    assert len(wide) + wide.merged == 10 and len(wide) > len(nbest)
    rc, _, err = _translate(capsys, short, "--checkpoint", ckpt, "--num-beams", "3", "--nbest", "1")
    assert rc == 0 and ": note: " not in err  # one line asked for, one listed: nothing to say
