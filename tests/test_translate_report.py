"""`rvlf translate` on the real signer video, and `rvlf report` tables from finished runs."""

from __future__ import annotations

import json

import pytest

from helpers import CHEAP, REPO, tiny_runs
from rvlf.cli import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A toy corpus (16-dim DINOv2 features), tiny stage-1 and SFT runs, and an SFT run without DINOv2."""
    root = tmp_path_factory.mktemp("runs")
    manifest, s1, _ = tiny_runs(root, sft_steps=2)
    assert main(["sft", "--config", str(REPO / "configs/demo/sft.yaml"), "--init", str(s1 / "last"), "--no-dino",
                 "--out", str(root / "sft_nodino"), "--max-steps", "1", f"data.root={manifest}",
                 "train.batch_size=4", *CHEAP]) == 0
    return root


def test_translate_real_video_with_overlay(runs, fixtures_dir, tmp_path, capsys):
    import cv2

    from rvlf.data.features import save_tiny_dinov2

    dino = save_tiny_dinov2(tmp_path / "dino16", hidden_size=16, intermediate_size=32)
    show = tmp_path / "show.mp4"
    capsys.readouterr()
    rc = main(["translate", str(fixtures_dir / "signer_58frames.mp4"), "--checkpoint", str(runs / "sft" / "last"),
               "--dino", str(dino), "--show", str(show), "--num-beams", "2"])
    assert rc == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("signer_58frames\t")  # stdout: the translation alone
    assert f"wrote {show}" in captured.err
    cap = cv2.VideoCapture(str(show))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 58
    import av

    with av.open(str(show)) as container:  # a codec browsers play (was mp4v), at the video's frame rate
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
    assert not list(tmp_path.glob(".show*"))  # no temporary file left


def test_translate_show_refuses_a_keypoint_input_before_translating(runs, fixtures_dir, tmp_path, capsys):
    capsys.readouterr()
    rc = main(["translate", str(fixtures_dir / "holistic_97frames.pose"), "--checkpoint", str(runs / "s1" / "last"),
               "--show", str(tmp_path / "o.mp4")])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and "--show needs a video" in err and len(err.strip().splitlines()) == 1



def test_translate_show_refuses_a_folder_or_a_path_under_a_file_before_translating(runs, fixtures_dir, tmp_path,
                                                                                    capsys):
    """`--show afile/o.mp4` said `afile: File exists (EEXIST)` after translating; `--show FOLDER` wrote
    FOLDER.mp4 beside it. Both are refused up front, one line, exit 2, nothing on stdout or on disk."""
    video, ckpt = str(fixtures_dir / "signer_58frames.mp4"), str(runs / "s1" / "last")
    folder, afile = tmp_path / "shown", tmp_path / "afile"
    folder.mkdir()
    afile.write_text("")
    for show, says in ((folder, f"--show {folder}: is a folder; give the file to write, e.g. --show "
                                f"{folder / 'signer_58frames.mp4'}"),
                       (afile / "o.mp4", f"--show {afile / 'o.mp4'}: {afile} is a file, not a folder"),
                       (afile / "sub" / "o.mp4", f"--show {afile / 'sub' / 'o.mp4'}: {afile} is a file, not a folder")):
        capsys.readouterr()
        rc = main(["translate", video, "--checkpoint", ckpt, "--show", str(show)])
        out, err = capsys.readouterr()
        assert (rc, out, err) == (2, "", f"rvlf translate: error: {says}\n"), show
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "shown"] and not any(folder.iterdir())

def test_translate_carries_on_past_a_bad_input(runs, fixtures_dir, tmp_path, capsys):
    """One unreadable file among several lost every translation (exit 2, nothing printed)."""
    notes = tmp_path / "notes.txt"
    notes.write_text("these are meeting notes\n" * 200)
    pose, ckpt = fixtures_dir / "holistic_97frames.pose", str(runs / "s1" / "last")
    capsys.readouterr()
    rc = main(["translate", str(pose), str(notes), str(fixtures_dir / "holistic_130frames.pose"), "--checkpoint", ckpt,
               "--num-beams", "2"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert [line.split("\t")[0] for line in out.strip().splitlines()] == ["holistic_97frames", "holistic_130frames"]
    assert f"failed: {notes}: a text file, not a video" in err and "1 of 3 inputs could not be read" in err
    # every input bad: exit 2, each named
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    rc = main(["translate", str(notes), str(empty), "--checkpoint", ckpt])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and str(notes) in err and f"{empty}: empty file" in err
    assert "none of the 2 inputs could be read" in err
    # a folder of videos is not a frame folder: say what to give instead
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes((fixtures_dir / "signer_58frames.mp4").read_bytes())
    rc = main(["translate", str(videos), "--checkpoint", ckpt])
    err = capsys.readouterr().err
    assert rc == 2 and "no frame images but 1 video file(s) (a.mp4): give the videos themselves" in err


def test_translate_feature_and_keypoint_files(runs, fixtures_dir, capsys):
    feature_file = next((runs / "toy" / "features").glob("*.npz"))
    capsys.readouterr()
    rc = main(["translate", str(feature_file), str(fixtures_dir / "holistic_97frames.pose"),
               "--checkpoint", str(runs / "s1" / "last"), "--num-beams", "2"])
    assert rc == 0
    names = [line.split("\t")[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert names == [feature_file.stem, "holistic_97frames"]


def test_translate_wrong_dino_size_is_a_clear_error(runs, fixtures_dir, tmp_path, capsys):
    from rvlf.data.features import save_tiny_dinov2

    dino = save_tiny_dinov2(tmp_path / "dino32")  # 32 dims, the checkpoint was trained on 16
    rc = main(["translate", str(fixtures_dir / "human_all_parts.png"), "--checkpoint", str(runs / "sft" / "last"),
               "--dino", str(dino)])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "human_all_parts.png" in err[0] and "16" in err[0]


def test_translate_missing_input(runs, tmp_path, capsys):
    rc = main(["translate", str(tmp_path / "nope.mp4"), "--checkpoint", str(runs / "s1" / "last")])
    assert rc == 2
    assert "nope.mp4" in capsys.readouterr().err


def test_report_builds_the_tables(runs, tmp_path, capsys):
    out = tmp_path / "report.md"
    rc = main(["report", str(runs / "s1"), str(runs / "sft"), str(runs / "sft_nodino"), "--out", str(out)])
    assert rc == 0
    text = out.read_text()
    assert "Main results" in text and "Stage 1 (VLP decoder)" in text
    assert "| w/o DINOv2 |" in text and "| w/o RFT |" in text
    assert "DINOv2 features (Table 6)" in text and "| SLT-SFT | × | × |" in text
    sft_scores = json.loads((runs / "sft" / "results.json").read_text())["test"]
    assert f"{sft_scores['bleu1']:.2f}" in text
    assert "sft/best/config.yaml" in text or "sft/last/config.yaml" in text


def test_report_on_unfinished_run_is_one_line(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "r.md")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results.json" in err[0]


def test_translate_says_no_signer_instead_of_a_sentence(runs, fixtures_dir, tmp_path, capsys):
    """All-NaN, all-zero and fully masked keypoints and a clip with nobody: a line on stderr each, no
    translation, exit 1; the good input beside them is still translated."""
    import numpy as np
    from pose_format import Pose

    from media_helpers import blank_video

    np.savez(tmp_path / "all_nan.npz", keypoints=np.full((58, 77, 3), np.nan, np.float32))
    np.savez(tmp_path / "all_zero.npz", keypoints=np.zeros((58, 77, 3), np.float32))
    pose = Pose.read((fixtures_dir / "holistic_97frames.pose").read_bytes())
    pose.body.data.mask = np.ones(pose.body.data.shape, dtype=bool)
    pose.body.confidence[:] = 0
    with (tmp_path / "masked.pose").open("wb") as f:
        pose.write(f)
    blank = blank_video(tmp_path / "blank.mp4")
    empty = [(tmp_path / "all_nan.npz", 58), (tmp_path / "all_zero.npz", 58), (tmp_path / "masked.pose", 97),
             (blank, 12)]
    capsys.readouterr()
    rc = main(["translate", *(str(p) for p, _ in empty), str(fixtures_dir / "holistic_97frames.pose"),
               "--checkpoint", str(runs / "s1" / "last"), "--num-beams", "1"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert [line.split("\t")[0] for line in out.strip().splitlines()] == ["holistic_97frames"]
    for path, frames in empty:
        assert (f"rvlf translate: {path}: no signer found (the body is detected in none of its {frames} frames); "
                "not translated") in err


def test_translate_mac_folder_and_long_inputs_under_both_policies(runs, fixtures_dir, tmp_path, capsys):
    import shutil

    import numpy as np
    import yaml

    from rvlf.data.features import save_video_features
    from rvlf.data.poses import read_keypoints

    kp = read_keypoints(fixtures_dir / "holistic_97frames.pose")
    long = save_video_features(tmp_path / "long.npz", np.concatenate([kp] * 10)[:900], None,
                               {"width": 320, "height": 240})
    ckpt = tmp_path / "subsample"
    shutil.copytree(runs / "s1" / "last", ckpt)
    cfg = yaml.safe_load((ckpt / "config.yaml").read_text())
    assert cfg["data"]["long_inputs"] == "truncate"                  # the paper's default, saved with the run
    cfg["data"]["long_inputs"] = "subsample"
    (ckpt / "config.yaml").write_text(yaml.safe_dump(cfg))
    for checkpoint, note in ((runs / "s1" / "last", "kept frames 1-300, dropped 600 (data.long_inputs=truncate)"),
                             (ckpt, "kept 300 frames spread over all 900, dropped 600 (data.long_inputs=subsample)")):
        capsys.readouterr()
        inputs = [long] if checkpoint == ckpt else [fixtures_dir / "real_formats" / "frames_macos_copy", long]
        rc = main(["translate", *map(str, inputs), "--checkpoint", str(checkpoint), "--num-beams", "1"])
        out, err = capsys.readouterr()
        assert rc == 0, err
        assert [line.split("\t")[0] for line in out.strip().splitlines()] == [p.stem for p in inputs]
        assert f"rvlf translate: long: 900 frames, longer than data.max_frames=300: {note}" in err
        assert "not a readable image" not in err


def _copy_run(src, dst):
    """The files `rvlf report` reads from a finished run (results, translations, config)."""
    import shutil

    for rel in ("results.json", "test_translations.tsv", "best/config.yaml", "last/config.yaml"):
        if (src / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src / rel, dst / rel)
    return dst


def test_report_chrf_columns_and_significance_of_differences(runs, tmp_path):
    from rvlf.text.files import read_translations

    s1, sft = _copy_run(runs / "s1", tmp_path / "s1"), _copy_run(runs / "sft", tmp_path / "sft")
    out = tmp_path / "report.md"
    assert main(["report", str(s1), str(sft), "--out", str(out), "--resamples", "200"]) == 0
    text = out.read_text()
    sft_scores = json.loads((sft / "results.json").read_text())["test"]
    row = next(line for line in text.splitlines() if line.startswith("| SLT-SFT |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[6:8] == [f"{sft_scores['chrf']:.2f}", f"{sft_scores['chrf++']:.2f}"]
    assert cells[8] == "Stage 1 (VLP decoder)" and cells[9][0] in "+-" and "[" in cells[10]

    # SLT-SFT translating every test sentence exactly, stage 1 none: a difference the test calls real
    trans = read_translations(sft / "test_translations.tsv")
    (sft / "test_translations.tsv").write_text("".join(f"{i}\t{r}\t{r}\n" for i, (_, r) in trans.items()))
    (s1 / "test_translations.tsv").write_text("".join(f"{i}\t\t{r}\n" for i, (_, r) in trans.items()))
    # results.json saved with a BOM by some editor still loads
    (s1 / "results.json").write_bytes(b"\xef\xbb\xbf" + (s1 / "results.json").read_bytes())
    assert main(["report", str(s1), str(sft), "--out", str(out)]) == 0
    row = next(line for line in out.read_text().splitlines() if line.startswith("| SLT-SFT |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[9].startswith("+100.00") and cells[10].startswith("+100.00") and "n.s." not in row

    # the same translations on both sides: no difference, marked not significant
    (s1 / "test_translations.tsv").write_text((sft / "test_translations.tsv").read_text())
    assert main(["report", str(s1), str(sft), "--out", str(out)]) == 0
    row = next(line for line in out.read_text().splitlines() if line.startswith("| SLT-SFT |"))
    assert row.count("+0.00 [+0.00, +0.00] (n.s.)") == 2

    # a run without translations: no difference can be tested
    (s1 / "test_translations.tsv").unlink()
    assert main(["report", str(s1), str(sft), "--out", str(out)]) == 0
    row = next(line for line in out.read_text().splitlines() if line.startswith("| SLT-SFT |"))
    assert [c.strip() for c in row.split("|")[1:-1]][9:11] == ["–", "–"]


def test_translate_says_when_face_hand_features_are_zeros_and_only_then(runs, fixtures_dir, tmp_path, capsys, caplog):
    """A keypoint file, or a feature file extracted with --no-features, gives a DINOv2 checkpoint zero
    face/hand features: one warning says so (it was silent for feature files). A checkpoint without
    DINOv2 gets no such warning, and an unreadable keypoint file is one error line, no warning first."""
    import logging

    from rvlf.data.features import save_video_features
    from rvlf.data.poses import read_keypoints

    pose = fixtures_dir / "holistic_97frames.pose"
    no_features = tmp_path / "holistic_97frames_kp.npz"  # what `rvlf extract --no-features` writes
    save_video_features(no_features, read_keypoints(pose), None, {"width": 320, "height": 240, "num_frames": 97})
    with caplog.at_level(logging.WARNING, logger="rvlf.inference.pipeline"):
        assert main(["translate", str(no_features), str(pose), "--checkpoint", str(runs / "sft" / "last"),
                     "--num-beams", "1"]) == 0
    warned = [r.getMessage() for r in caplog.records if r.name == "rvlf.inference.pipeline"]
    assert len(warned) == 2 and str(no_features) in warned[0] and "--no-features" in warned[0], warned
    assert str(pose) in warned[1] and "zeros" in warned[1], warned

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rvlf.inference.pipeline"):
        assert main(["translate", str(no_features), str(pose), "--checkpoint", str(runs / "sft_nodino" / "last"),
                     "--num-beams", "1"]) == 0
    assert not [r for r in caplog.records if r.name == "rvlf.inference.pipeline"]

    cut = tmp_path / "cut.pose"
    cut.write_bytes(pose.read_bytes()[:1000])
    caplog.clear()
    capsys.readouterr()
    with caplog.at_level(logging.WARNING, logger="rvlf.inference.pipeline"):
        assert main(["translate", str(cut), "--checkpoint", str(runs / "sft" / "last")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"rvlf translate: error: {cut}: ")
    assert not [r for r in caplog.records if r.name == "rvlf.inference.pipeline"]


def test_translate_says_when_the_model_generated_no_words(runs, fixtures_dir, capsys, monkeypatch):
    """An empty translation (a one-frame folder with the demo's model) printed 'NAME<TAB>' and nothing else;
    now a note on stderr says the model generated no words; the line on stdout stays (one a file)."""
    import rvlf.inference.pipeline

    monkeypatch.setattr(rvlf.inference.pipeline, "decode", lambda stage, prepared, **kw: [" " for _ in prepared])
    pose = fixtures_dir / "holistic_97frames.pose"
    capsys.readouterr()
    rc = main(["translate", str(pose), "--checkpoint", str(runs / "s1" / "last")])
    out, err = capsys.readouterr()
    assert rc == 0 and out == "holistic_97frames\t\n"
    assert f"rvlf translate: {pose}: the model generated no words for its 97 frames" in err


def test_translate_reads_its_inputs_before_the_model_weights(runs, fixtures_dir, tmp_path, capsys):
    """A missing or unreadable input is reported before the checkpoint's weights are loaded (the
    weights here are broken, so loading them first would name the weights instead); with a good
    input the broken weights are what is reported."""
    import shutil

    ckpt = tmp_path / "ckpt"
    shutil.copytree(runs / "sft" / "last", ckpt)
    (ckpt / "model.safetensors").write_bytes(b"not safetensors")
    bad_pose = tmp_path / "broken.pose"
    bad_pose.write_bytes(b"\x00\x01 not a pose file")
    for bad in (tmp_path / "nope.mp4", bad_pose):
        rc = main(["translate", str(bad), "--checkpoint", str(ckpt)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1, err
        assert bad.name in err[0] and "model.safetensors" not in err[0], err
    good = sorted(fixtures_dir.glob("*.pose"))[0]
    rc = main(["translate", str(good), "--checkpoint", str(ckpt)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "model.safetensors" in err[-1], err


def _rvlf(*argv) -> tuple[int, list[str]]:
    """`python -m rvlf ARGV` in a fresh process (the CLI's own stderr handler, as a user sees it):
    (exit code, stderr lines)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-m", "rvlf", *map(str, argv)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    return done.returncode, done.stderr.splitlines()


def test_every_stderr_line_of_translate_and_evaluate_names_the_command(runs, fixtures_dir, tmp_path):
    """Keypoint-only inputs into a DINOv2 checkpoint: the warnings (logged by rvlf.inference.pipeline) start
    with `rvlf translate:` like the command's own lines (a failed input, the count at the end); variants: a
    feature file without DINOv2 features, and `rvlf evaluate`'s notes and its data loader's log lines."""
    from rvlf.data.features import save_video_features
    from rvlf.data.poses import read_keypoints

    pose = fixtures_dir / "holistic_97frames.pose"
    no_features = tmp_path / "kp_only.npz"  # what `rvlf extract --no-features` writes
    save_video_features(no_features, read_keypoints(pose), None, {"width": 320, "height": 240, "num_frames": 97})
    rc, err = _rvlf("translate", pose, no_features, tmp_path / "nope.mp4", "--checkpoint", runs / "sft" / "last",
                    "--num-beams", "1")
    assert rc == 1 and len(err) == 4, err  # two warnings, one failed input, the count
    assert all(line.startswith("rvlf translate: ") for line in err), err
    assert f"rvlf translate: {pose}: warning: keypoints only - " in err[0], err
    assert f"rvlf translate: {no_features}: warning: a feature file without DINOv2 features" in err[1], err
    rc, err = _rvlf("evaluate", "--checkpoint", runs / "sft" / "last", "--split", "dev", "data.dev_max_samples=2")
    assert rc == 0 and err, err
    assert all(line.startswith("rvlf evaluate: ") for line in err), err
    assert any(line.startswith("rvlf evaluate: note: the run scored dev on its first 2") for line in err), err
    assert any(line.startswith("rvlf evaluate: dev: 4 samples") for line in err), err  # logged as `rvlf data: ...`
