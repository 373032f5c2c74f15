"""`SignTranslator` (rvlf.inference.api): the README's five lines, inputs of every kind, n-best scores, hub loading."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch

from helpers import REPO
from rvlf import Hypothesis, SignTranslator
from rvlf.errors import InputFileError, RvlfError


def readme_example() -> list[str]:
    """The Python block of the README's "Use a trained model from Python" section, line by line."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Use a trained model from Python", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def grpo(tiny_grpo_run) -> SignTranslator:
    return SignTranslator.from_pretrained(tiny_grpo_run / "best", device="cpu")


@pytest.fixture(scope="module")
def video_prepared(grpo, fixtures_dir):
    """The real signer video through the same preparation as `rvlf translate` (MediaPipe runs once)."""
    return grpo.prepare(fixtures_dir / "signer_58frames.mp4")


def test_readme_example_runs_as_written(tiny_grpo_run, fixtures_dir, tmp_path, monkeypatch, capsys):
    lines = readme_example()
    assert len(lines) == 5, lines
    # the paths the README names: `rvlf demo`'s run folder and a video of a signer
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    (tmp_path / "runs" / "demo" / "grpo").symlink_to(tiny_grpo_run, target_is_directory=True)
    shutil.copy(fixtures_dir / "signer_58frames.mp4", tmp_path / "signer.mp4")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile("\n".join(lines), "README.md", "exec"), namespace)  # noqa: S102 - our own README

    model = namespace["model"]
    printed = capsys.readouterr().out
    prepared = model.prepare("signer.mp4")
    [nbest] = model.translate_prepared([prepared], return_scores=True)  # the checkpoint's num_beams, as the README
    text = nbest[0].text
    assert text and printed.startswith(text + "\n")
    assert f"Hypothesis(text={text!r}, score=" in printed
    saved = tmp_path / "rvlf-demo-grpo"
    assert (saved / "README.md").is_file() and (saved / "model.safetensors").is_file()
    assert SignTranslator.from_pretrained(saved, device="cpu").translate_prepared([prepared]) == [text]


def test_loading_and_saving_print_no_library_noise(tiny_grpo_run, tmp_path, capfd):
    """transformers' "Loading weights" / "Writing model shards" bars and peft's FutureWarning on
    `is_gradient_checkpointing` came with every `from_pretrained` and `save_pretrained`."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = SignTranslator.from_pretrained(tiny_grpo_run / "best", device="cpu")
        model.save_pretrained(tmp_path / "saved")
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "Writing model shards" not in err and "it/s]" not in err, err
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]
    assert hf_logging.is_progress_bar_enabled()  # switched off inside only, then back on


def test_dinov2_is_loaded_once_for_many_videos(grpo, fixtures_dir, tmp_path, monkeypatch):
    """`rvlf translate a.mp4 b.mp4`, the API and the app loaded DINOv2 again for every video."""
    from rvlf.data import features
    from rvlf.inference.pipeline import dino_encoder

    loads = []
    original = features.DinoEncoder.__init__

    def counting(self, *args, **kwargs):
        loads.append(args[0] if args else kwargs.get("model"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(features.DinoEncoder, "__init__", counting)
    dino_encoder.cache_clear()
    shutil.copy(fixtures_dir / "signer_58frames.mp4", tmp_path / "again.mp4")
    a = grpo.prepare(fixtures_dir / "signer_58frames.mp4")
    b = grpo.prepare(tmp_path / "again.mp4")
    assert loads == [grpo.dino_model]
    np.testing.assert_array_equal(a.dino, b.dino)  # the same encoder, the same features


def test_nbest_scores_are_the_beams_mean_token_log_probabilities(grpo, video_prepared):
    [text] = grpo.translate_prepared([video_prepared], num_beams=5)
    [nbest] = grpo.translate_prepared([video_prepared], num_beams=5, return_scores=True)
    assert isinstance(nbest[0], Hypothesis) and nbest[0].text == text
    assert 1 <= len(nbest) <= 5 and len({h.text for h in nbest}) == len(nbest)
    scores = [h.score for h in nbest]
    assert scores == sorted(scores, reverse=True) and all(s < 0 for s in scores)

    # the best score is the mean log-probability of its tokens (end token included) under the model
    from rvlf.data.dataset import collate
    from rvlf.data.keypoints import normalize_keypoints

    model = grpo.model
    batch = collate([{"id": "v", "text": "", "keypoints": normalize_keypoints(video_prepared.keypoints),
                      "dino": video_prepared.dino.astype(np.float16)}])
    out = model.generate(batch["keypoints"], batch["frame_mask"], batch["dino"], num_beams=5, return_scores=True)
    assert out.texts == [text]
    with torch.no_grad():
        logps = model.completion_logprobs(batch["keypoints"], batch["frame_mask"], batch["dino"],
                                          out.completion_ids, out.completion_mask, 1)
    mean = float(logps.sum() / out.completion_mask.sum())
    assert nbest[0].score == pytest.approx(mean, abs=1e-4)
    # greedy decoding is beam width 1: one hypothesis, scored the same way
    [greedy] = grpo.translate_prepared([video_prepared], num_beams=1, return_scores=True)
    assert len(greedy) == 1 and greedy[0].score < 0


def test_every_kind_of_input_gives_the_text_of_its_file(grpo, video_prepared, fixtures_dir, tmp_path):
    from rvlf.data.features import save_video_features
    from rvlf.data.poses import read_keypoints
    from rvlf.data.video import iter_frames

    pose = fixtures_dir / "holistic_97frames.pose"
    from_file = grpo.translate(pose, num_beams=2)
    keypoints = read_keypoints(pose)
    assert grpo.translate(keypoints, num_beams=2) == from_file
    assert grpo.translate(torch.from_numpy(keypoints), num_beams=2) == from_file
    assert grpo.translate({"keypoints": keypoints}, num_beams=2) == from_file
    # NaN points are points not found, as the readers make them
    holes = keypoints.copy()
    holes[:, 20:30, :2] = np.nan
    zeroed = keypoints.copy()
    zeroed[:, 20:30] = 0.0
    assert grpo.translate(holes, num_beams=2) == grpo.translate(zeroed, num_beams=2)

    # a feature file and its content as a dict; a list keeps its order
    video_text = grpo.translate_prepared([video_prepared], num_beams=2)[0]
    feats = save_video_features(tmp_path / "signer.npz", video_prepared.keypoints, video_prepared.dino,
                                {"source": "test", "width": 540, "height": 720})
    as_dict = {"keypoints": video_prepared.keypoints, "dino": video_prepared.dino}
    assert grpo.translate([feats, as_dict, pose], num_beams=2) == [video_text, video_text, from_file]

    # RGB frames of the video, as an array, give the video's text (same MediaPipe, same crops)
    frames = np.stack(list(iter_frames(fixtures_dir / "signer_58frames.mp4")))
    assert frames.dtype == np.uint8 and frames.shape == (58, 720, 540, 3)
    assert grpo.translate(frames, num_beams=2) == video_text


def test_bad_inputs_are_one_clear_line(grpo, tmp_path):
    with pytest.raises(InputFileError, match="nope.mp4"):
        grpo.translate(tmp_path / "nope.mp4")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n")
    with pytest.raises(InputFileError, match="notes.txt: a text file, not a video"):
        grpo.translate(notes)
    with pytest.raises(RvlfError, match=r"shape \[10, 543, 3\].*\[T,77,3\].*from_holistic"):
        grpo.translate(np.zeros((10, 543, 3), np.float32))
    with pytest.raises(RvlfError, match=r"'dino' has shape \[4, 3, 16\]; expected \[T,3,D\] with T = 5"):
        grpo.translate({"keypoints": np.ones((5, 77, 3), np.float32), "dino": np.zeros((4, 3, 16), np.float32)})
    with pytest.raises(RvlfError, match=r"^input: cannot translate an int \(3\); give a path \(video"):
        grpo.translate(3)  # was "array: cannot translate a int"
    with pytest.raises(RvlfError, match=r"^input: cannot translate a set \(\{'signer.mp4'\}\); give a path"):
        grpo.translate({"signer.mp4"})
    with pytest.raises(RvlfError, match="num_beams must be >= 1"):
        grpo.translate(np.ones((5, 77, 3), np.float32), num_beams=0)


def test_no_signer_is_an_error_and_long_inputs_are_said(grpo, fixtures_dir, caplog):
    from rvlf.data.poses import read_keypoints

    nobody = np.zeros((20, 77, 3), np.float32)  # no point found in any frame
    with pytest.raises(RvlfError, match="no signer found .* none of its 20 frames"):
        grpo.translate(nobody)
    kp = read_keypoints(fixtures_dir / "holistic_130frames.pose")
    long = np.concatenate([kp, kp, kp, kp])  # 520 frames, past data.max_frames = 300
    with caplog.at_level("WARNING", logger="rvlf.inference.api"):
        text = grpo.translate(long, num_beams=1)
    assert "520 frames, longer than data.max_frames=300" in caplog.text and "truncate" in caplog.text
    assert text == grpo.translate(long[:300], num_beams=1)  # the paper's truncation (data.long_inputs)


def test_from_pretrained_errors_name_the_source(tmp_path, monkeypatch):
    with pytest.raises(InputFileError, match="no such model folder"):
        SignTranslator.from_pretrained(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="not a checkpoint folder"):
        SignTranslator.from_pretrained(tmp_path / "empty")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RvlfError) as err:
        SignTranslator.from_pretrained("someone/no-such-sign-model", cache_dir=tmp_path / "hub")
    msg = str(err.value)
    assert "\n" not in msg and "someone/no-such-sign-model" in msg and "HF_HUB_OFFLINE" in msg


def test_hub_id_without_network_is_one_line(tmp_path, monkeypatch):
    """Not offline by setting, but the hub cannot be reached (here: a closed port on this machine)."""
    import huggingface_hub.constants as hub_constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(RvlfError) as err:
        SignTranslator.from_pretrained("someone/no-such-sign-model", cache_dir=tmp_path / "hub")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("someone/no-such-sign-model: no such local folder")
    assert "cannot be reached" in msg or "could not be asked" in msg


def test_from_pretrained_reads_a_hub_id_from_the_cache_offline(tiny_grpo_run, fixtures_dir, tmp_path, monkeypatch,
                                                               capsys):
    """A model downloaded earlier loads by its hub id without the network: the cache layout of
    `huggingface_hub` (models--OWNER--NAME/refs/main -> snapshots/COMMIT/<files>)."""
    local = SignTranslator.from_pretrained(tiny_grpo_run / "best", device="cpu")
    exported = local.save_pretrained(tmp_path / "export")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--tiny-rvlf"
    shutil.copytree(exported, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub = SignTranslator.from_pretrained("someone/tiny-rvlf", cache_dir=tmp_path / "hub", device="cpu")
    assert hub.directory == repo / "snapshots" / commit and hub.stage == "grpo"
    pose = fixtures_dir / "holistic_130frames.pose"
    assert_same_nbest(hub.translate(pose, num_beams=3, return_scores=True),
                      local.translate(pose, num_beams=3, return_scores=True))
    # `rvlf translate --checkpoint OWNER/NAME` reads the same snapshot (the default hub cache, here redirected)
    import huggingface_hub.constants as hub_constants

    from rvlf.cli import main

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    capsys.readouterr()
    assert main(["translate", "--checkpoint", "someone/tiny-rvlf", str(pose), "--num-beams", "3"]) == 0
    assert capsys.readouterr().out == f"{pose.stem}\t{local.translate(pose, num_beams=3)}\n"
    assert main(["translate", "--checkpoint", "someone/tiny-rvlf", "--revision", "no-such-branch", str(pose)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "someone/tiny-rvlf: revision 'no-such-branch' is not in the Hugging Face cache" in err
    assert "(other revisions of this model are)" in err, err
    # rvlf evaluate takes the hub id too (it said "not a checkpoint folder (no trainer_state.json)")
    # an uploaded model keeps no local path: its data.root is a name, so evaluate says what to pass
    assert main(["evaluate", "--checkpoint", "someone/tiny-rvlf", "--split", "dev", "--num-beams", "2"]) == 2
    assert "someone/tiny-rvlf: data.root 'manifest.jsonl' (from its config.yaml) is not found" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", "someone/tiny-rvlf", "--split", "dev", "--num-beams", "2",
                 f"data.root={tiny_grpo_run.parent / 'toy' / 'manifest.jsonl'}"]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["split"] == "dev" and "bleu4" in json.dumps(scores)


def assert_same_nbest(a: list[Hypothesis], b: list[Hypothesis]) -> None:
    """Same texts in the same order; scores equal up to float rounding (a merged LoRA adds ~1e-7)."""
    assert [h.text for h in a] == [h.text for h in b]
    assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-4)


def test_default_beam_width_is_the_checkpoints_as_in_rvlf_translate(grpo, tiny_grpo_run, fixtures_dir, capsys):
    """`rvlf translate` decodes with the checkpoint's `train.num_beams`; so does `translate()` by
    default (it used 5 whatever the checkpoint said: other texts than the CLI's for `rvlf demo --quick`)."""
    from rvlf.cli import main

    pose = fixtures_dir / "holistic_97frames.pose"
    assert grpo.config.train.num_beams != 5  # this tiny run decodes greedily (tests' CHEAP settings)
    text = grpo.translate(pose)
    assert text == grpo.translate(pose, num_beams=grpo.config.train.num_beams)
    [nbest] = grpo.translate([pose], return_scores=True)
    assert len(nbest) == grpo.config.train.num_beams and nbest[0].text == text
    capsys.readouterr()
    assert main(["translate", str(pose), "--checkpoint", str(tiny_grpo_run / "best")]) == 0
    assert capsys.readouterr().out == f"holistic_97frames\t{text}\n"


# ---- frame arrays in the layouts users hold them in (C1) ----------------------------------------------------


@pytest.fixture(scope="module")
def frames20(fixtures_dir):
    from rvlf.data.video import iter_frames

    frames = []
    for frame in iter_frames(fixtures_dir / "signer_58frames.mp4"):
        frames.append(frame)
        if len(frames) == 20:
            break
    return np.stack(frames)                                  # uint8 [20,720,540,3]


def test_every_common_frame_layout_converts_to_the_same_rgb_frames(frames20):
    """C1's layouts: each gives exactly the uint8 RGB frames (grayscale: the gray replicated)."""
    from rvlf.inference.api import as_rgb_frames

    arr = frames20[:4]
    gray = arr[..., 1]
    rgba = np.concatenate([arr, np.full(arr.shape[:3] + (1,), 255, np.uint8)], -1)
    cases = {
        "RGBA [T,H,W,4]": (rgba, arr),
        "float32 [0,1]": (arr.astype(np.float32) / 255, arr),
        "float64 [0,255]": (arr.astype(np.float64), arr),
        "channels-first [T,3,H,W]": (arr.transpose(0, 3, 1, 2), arr),
        "channels-first float torch": (torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(255).numpy(), arr),
        "one frame [H,W,3]": (arr[0], arr[:1]),
        "int64 [T,H,W,3]": (arr.astype(np.int64), arr),
        "grayscale [T,H,W]": (gray, np.repeat(gray[..., None], 3, -1)),
        "grayscale [T,H,W,1]": (gray[..., None], np.repeat(gray[..., None], 3, -1)),
        "grayscale float [T,H,W]": (gray / 255.0, np.repeat(gray[..., None], 3, -1)),
        "one grayscale frame [H,W]": (gray[0], np.repeat(gray[:1, ..., None], 3, -1)),
    }
    for what, (given, expected) in cases.items():
        got = as_rgb_frames(given)
        assert got is not None and got.dtype == np.uint8, what
        np.testing.assert_array_equal(got, expected, err_msg=what)
    assert as_rgb_frames(np.ones((5, 77, 3), np.float32)) is None    # keypoints stay keypoints


def test_frames_as_a_list_rgba_and_channels_first_translate_like_the_array(grpo, frames20):
    """C1 end to end: a list of frames (as cv2/decord users hold them), float channels-first
    tensors (torchvision) and RGBA give the uint8 array's text; a list of keypoint arrays is
    still a list of inputs."""
    arr = frames20[:8]
    text = grpo.translate(arr, num_beams=2)
    assert grpo.translate(list(arr), num_beams=2) == text
    assert grpo.translate(torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255, num_beams=2) == text
    alpha = np.full(arr.shape[:3] + (1,), 255, np.uint8)
    assert grpo.translate([torch.from_numpy(f) for f in np.concatenate([arr, alpha], -1)], num_beams=2) == text
    kp = grpo.prepare(arr).keypoints
    assert grpo.translate([kp, kp[:5]], num_beams=2) == [grpo.translate(kp, num_beams=2),
                                                         grpo.translate(kp[:5], num_beams=2)]


@pytest.mark.parametrize("given, match", [
    (np.zeros((4, 3, 64, 64, 3), np.uint8), r"shape \[4, 3, 64, 64, 3\] is neither frames nor keypoints"),
    (np.zeros((4, 64, 64, 2), np.uint8), "have 2 channels"),
    (np.full((4, 64, 64, 3), -1.5, np.float32), r"values from -1\.5 to -1\.5; frames must be in \[0, 1\] or \[0, 255\]"),
    (np.zeros((4, 64, 64, 3), np.uint16) + 4000, "values from 4000 to 4000"),
    (np.zeros((4, 64, 64, 3), bool), "an array of bool"),
    ([np.zeros((64, 64, 3), np.uint8), np.zeros((32, 64, 3), np.uint8)], r"frame 1 has shape \[32, 64, 3\]"),
    (np.zeros((0, 64, 64, 3), np.uint8), "no frames"),
])
def test_other_arrays_are_refused_with_the_accepted_layouts(grpo, given, match):
    with pytest.raises(RvlfError, match=match) as err:
        grpo.translate(given)
    assert "\n" not in str(err.value)
    if "no frames" not in match:
        assert "RGBA [T,H,W,4]" in str(err.value) and "channels-first [T,3,H,W]" in str(err.value)


def test_keypoint_confidence_outside_0_1_is_refused(grpo, fixtures_dir):
    """C1: confidence 0..100 was accepted silently (rvlf thresholds it at 0.3: every point would
    count as found); now one line says it must be in [0, 1]; variant: negative confidence."""
    from rvlf.data.poses import read_keypoints

    kp = read_keypoints(fixtures_dir / "holistic_97frames.pose")
    percent = kp.copy()
    percent[..., 2] *= 100
    with pytest.raises(RvlfError, match=r"confidence .* must be in \[0, 1\], 0 = not found \(a percentage\? "
                                        r"divide by 100\)"):
        grpo.translate(percent)
    negative = kp.copy()
    negative[0, 0, 2] = -0.5
    with pytest.raises(RvlfError, match=r"ranges from -0.5 to"):
        grpo.translate({"keypoints": negative})
    wide = {"keypoints": kp, "dino": np.zeros((len(kp), 3, 768), np.float32)}
    with pytest.raises(RvlfError, match=r"768 dims but the checkpoint expects \d+ \(extract with the DINOv2"):
        grpo.translate(wide)


def test_every_kind_of_input_is_named_by_one_rule_in_warnings_errors_and_results(grpo, fixtures_dir, frames20,
                                                                                 caplog):
    """An input without a path is `KIND [SHAPE]` alone and `inputs[i] (KIND [SHAPE])` in a list, the
    same in its warnings (logged and `Translation.warnings`' owner `.source`) and in its errors (was
    `array:` in warnings, `<array>:` in the no-signer error, `input1` in a list)."""
    from rvlf.data.poses import read_keypoints

    kp = read_keypoints(fixtures_dir / "holistic_97frames.pose")[:4]  # 4 frames: "too short to be signing"
    one_frame = frames20[:1]  # a still image: warned about, still translated
    short = {
        "array [4,77,3]": kp,
        "tensor [4,77,3]": torch.from_numpy(kp),
        "dict (keypoints [4,77,3])": {"keypoints": kp},
        "array [1,720,540,3]": one_frame,
        "list of 1 frame [720,540,3]": [one_frame[0]],
    }
    for label, given in short.items():
        caplog.clear()
        with caplog.at_level("WARNING", logger="rvlf.inference.api"):
            result = grpo.translate(given, num_beams=1)
        assert result.source == label and result.warnings, label
        assert f"{label}: warning: only " in caplog.text, (label, caplog.text)
        assert "<" not in caplog.text and "input0" not in caplog.text
    # several inputs: each by its place in the list; a path names itself (not its stem)
    pose = fixtures_dir / "holistic_97frames.pose"
    caplog.clear()
    with caplog.at_level("WARNING", logger="rvlf.inference.api"):
        results = grpo.translate([kp, torch.from_numpy(kp), pose], num_beams=1, return_scores=True)
    assert [r.source for r in results] == ["inputs[0] (array [4,77,3])", "inputs[1] (tensor [4,77,3])", str(pose)]
    assert "inputs[1] (tensor [4,77,3]): warning: only 4 frames" in caplog.text

    # errors: the same names (no signer found, a bad dict, frames of two sizes, an unknown kind)
    nobody = np.zeros((20, 77, 3), np.float32)
    black = np.zeros((2, 64, 64, 3), np.uint8)
    for given, line in [
        (nobody, "array [20,77,3]: no signer found"),
        (torch.from_numpy(nobody), "tensor [20,77,3]: no signer found"),
        ({"keypoints": nobody}, r"dict (keypoints [20,77,3]): no signer found"),
        (list(black), "list of 2 frames [64,64,3]: no signer found"),
        ([kp, nobody], "inputs[1] (array [20,77,3]): no signer found"),
        ({"dino": nobody}, "dict: a dict input needs 'keypoints'"),
        ((black[0], black[0, :32]), "tuple of 2 frames [64,64,3]: a list is one video's frames"),
        ([kp, 3], "inputs[1]: cannot translate an int (3)"),
    ]:
        with pytest.raises(RvlfError) as err:
            grpo.translate(given, num_beams=1)
        assert str(err.value).startswith(line), (line, str(err.value))
