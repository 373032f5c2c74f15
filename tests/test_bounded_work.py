"""Bounded work (C6 in the bug-hunt report): the frames `data.max_frames` drops never reach MediaPipe or
DINOv2 (`rvlf translate`, `SignTranslator`, the app), `subsample` picks its frames before extraction, the
app refuses over-long uploads and passes Gradio a maximum upload size, and its timing table shows each
part. MediaPipe and DINOv2 calls are counted by wrapping them."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from helpers import cli_output
from rvlf import SignTranslator

MAX = 20  # data.max_frames for these tests; the inputs have 3x as many frames


@pytest.fixture
def counted(monkeypatch):
    """{"mediapipe": frames MediaPipe processed, "dino": crops DINOv2 encoded}, counted from here on."""
    from rvlf.data.features import DinoEncoder
    from rvlf.data.holistic import HolisticExtractor

    counts = {"mediapipe": 0, "dino": 0}
    process, encode = HolisticExtractor.process, DinoEncoder.encode

    def counting_process(self, frame):
        counts["mediapipe"] += 1
        return process(self, frame)

    def counting_encode(self, images):
        counts["dino"] += len(images)
        return encode(self, images)

    monkeypatch.setattr(HolisticExtractor, "process", counting_process)
    monkeypatch.setattr(DinoEncoder, "encode", counting_encode)
    return counts


@pytest.fixture(scope="module")
def long_frames(fixtures_dir, tmp_path_factory):
    """A frame folder of 60 PNG frames: the first 60 frames of the signer video played forth and back."""
    from PIL import Image

    from rvlf.data.video import iter_frames

    frames = list(iter_frames(fixtures_dir / "signer_58frames.mp4"))
    frames = (frames + frames[::-1])[:3 * MAX]
    folder = tmp_path_factory.mktemp("long") / "long60"
    folder.mkdir()
    for t, f in enumerate(frames):
        Image.fromarray(f[::2, ::2]).save(folder / f"{t:04d}.png", compress_level=1)
    return folder


def _translator(tiny_grpo_run, policy: str) -> SignTranslator:
    model = SignTranslator.from_pretrained(tiny_grpo_run / "best", device="cpu")
    model.config.data.max_frames, model.config.data.long_inputs = MAX, policy
    return model


def _dino_parts(prepared) -> int:
    return int(prepared.found.any(0).sum())  # DINOv2 encodes every kept frame of each part ever found


def test_truncate_extracts_only_the_frames_it_keeps(tiny_grpo_run, long_frames, counted, caplog):
    model = _translator(tiny_grpo_run, "truncate")
    p = model.prepare(long_frames)
    assert counted["mediapipe"] == MAX and counted["dino"] == MAX * _dino_parts(p)
    assert (len(p.keypoints), p.input_frames, p.frames.tolist()) == (MAX, 3 * MAX, list(range(MAX)))
    with caplog.at_level("WARNING", logger="rvlf.inference.api"):
        model.translate_prepared([p])
    assert f"{3 * MAX} frames, longer than data.max_frames={MAX}: kept frames 1-{MAX}, dropped {2 * MAX}" in caplog.text


def test_subsample_picks_its_frames_before_extraction(tiny_grpo_run, long_frames, counted, tmp_path):
    from rvlf.data.dataset import select_frames

    model = _translator(tiny_grpo_run, "subsample")
    p = model.prepare(long_frames)
    keep = select_frames(3 * MAX, MAX, "subsample")
    assert counted["mediapipe"] == MAX and p.frames.tolist() == keep.tolist() and p.input_frames == 3 * MAX
    # the same frames given alone are extracted to the same keypoints and features
    kept = tmp_path / "kept"
    kept.mkdir()
    files = sorted(long_frames.iterdir())
    for t in keep:
        shutil.copy(files[t], kept / files[t].name)
    q = model.prepare(kept)
    np.testing.assert_array_equal(p.keypoints, q.keypoints)
    np.testing.assert_allclose(p.dino, q.dino, atol=1e-6)
    assert model.translate_prepared([p]) == model.translate_prepared([q])


def test_a_frame_array_and_the_cli_extract_only_the_kept_frames(tiny_grpo_run, long_frames, counted, tmp_path,
                                                               monkeypatch):
    from rvlf.data.video import iter_frames

    model = _translator(tiny_grpo_run, "truncate")
    frames = np.stack(list(iter_frames(long_frames)))
    p = model.prepare(frames)
    assert counted["mediapipe"] == MAX and p.input_frames == 3 * MAX and len(p.keypoints) == MAX

    # `rvlf translate` reads data.max_frames from the checkpoint's config before extracting: make it MAX
    from rvlf.inference import loading as inference

    load_config = inference.load_stage_config

    def with_max(directory):
        cfg = load_config(directory)
        cfg.data.max_frames = MAX
        return cfg

    monkeypatch.setattr(inference, "load_stage_config", with_max)
    counted["mediapipe"] = counted["dino"] = 0
    rc, out, err = cli_output("translate", long_frames, "--checkpoint", tiny_grpo_run / "best", "--device", "cpu",
                              "--show", tmp_path / "shown.mp4")
    assert rc == 0, err
    assert counted["mediapipe"] == MAX and counted["dino"] == MAX * _dino_parts(p)
    assert f"kept frames 1-{MAX}, dropped {2 * MAX}" in err
    import av

    with av.open(str(tmp_path / "shown.mp4")) as c:  # the overlay shows the frames the model read
        assert sum(1 for _ in c.decode(video=0)) == MAX


def test_the_app_bounds_its_work_and_times_each_part(tiny_grpo_run, fixtures_dir, long_frames, counted, tmp_path):
    from rvlf.inference.app import process

    model = _translator(tiny_grpo_run, "truncate")
    archive = shutil.make_archive(str(tmp_path / "long60"), "zip", long_frames.parent, long_frames.name)
    res = process(model, archive, num_beams=2, workdir=tmp_path / "work")
    assert not res.error, res.status
    assert counted["mediapipe"] == MAX and f"dropped {2 * MAX}" in res.status and "60 frames" in res.status
    parts = [part for part, _ in res.timings]
    assert parts == ["unpacking the zip", "checking the length", "decoding the video",
                     "keypoints (MediaPipe Holistic)", "face/hand crops", "DINOv2 features",
                     "translation (beam search, width 2)", "drawing keypoints and crop boxes", "total"], parts
    assert all(sec >= 0 for _, sec in res.timings)

    # over the page's length limit: refused before any MediaPipe work, naming the upload
    counted["mediapipe"] = 0
    res = process(model, fixtures_dir / "signer_58frames.mp4", workdir=tmp_path / "work", max_seconds=1.5)
    assert res.error and counted["mediapipe"] == 0
    assert res.status.startswith("**Cannot read `signer_58frames.mp4`**: 2 s of video is longer than this page's "
                                 "limit of 1.5 s"), res.status
    res = process(model, archive, workdir=tmp_path / "work", max_seconds=2)
    assert res.error and "60 frames (at 25 frames/s) is longer than this page's limit of 2 s" in res.status


def test_serve_gives_gradio_the_upload_limit_and_the_page_states_it(tiny_grpo_run, monkeypatch):
    import gradio as gr

    from rvlf.inference.app import serve

    seen = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: seen.update(kw, page=self))
    serve(str(tiny_grpo_run / "best"), device="cpu", max_upload_mb=5, max_seconds=30)
    assert seen["max_file_size"] == "5mb"
    texts = [b.value for b in seen["page"].blocks.values() if getattr(b, "elem_id", None) == "rvlf-limits"]
    assert texts and texts[0].startswith("Up to 5 MB and 30 s of video.") and "300 frames" in texts[0]
