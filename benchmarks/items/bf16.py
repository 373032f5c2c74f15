"""10. bfloat16 on this CPU: DINOv2-base crop features and the sign LM, and the seconds of compute per
second of video of `rvlf translate`'s work before (float32) and after (`inference_dtype`). See
benchmarks/README.md."""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import REPO, VIDEO, Row, Section, Sizes


def run(sizes: Sizes, ctx: dict) -> Section:
    import numpy as np
    import torch
    from PIL import Image
    from transformers import Dinov2Config, Dinov2Model

    from rvlf.data.extract import Job, prepare
    from rvlf.data.features import DinoEncoder, inference_dtype, save_tiny_dinov2
    from rvlf.data.video import iter_frames, video_fps
    from rvlf.inference.loading import load_stage
    from rvlf.inference.pipeline import Prepared, decode

    sys.path.insert(0, str(REPO / "tests"))
    from conftest import tiny_runs  # noqa: E402

    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    chosen = inference_dtype("cpu")
    sec = Section("10. bfloat16 on CPU: DINOv2-base features, the sign LM, seconds of compute per second of video")
    n_frames = 4 if sizes.quick else 12
    runs = max(1, min(sizes.runs, 3))  # DINOv2-base in float32 is minutes on a loaded 2-core machine
    fps = video_fps(VIDEO)
    seconds_of_video = n_frames / fps
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clip = root / "clip"  # the video's first n_frames frames, as a frame folder: the same input every run
        clip.mkdir()
        for t, frame in enumerate(iter_frames(VIDEO)):
            if t == n_frames:
                break
            Image.fromarray(frame).save(clip / f"{t:04d}.png")
        base = root / "dinov2-base"
        torch.manual_seed(0)
        Dinov2Model(Dinov2Config(patch_size=14, image_size=224)).save_pretrained(base)  # 768 wide, 12 layers
        enc32 = DinoEncoder(str(base), batch_size=32)
        enc16 = DinoEncoder(str(base), batch_size=32, dtype=torch.bfloat16)
        quiet = io.StringIO()
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            try:  # the tests' tiny stage-1 and SFT runs: the demo's 2-layer 128-wide Qwen3, 16-dim DINOv2 features
                _, _, sft = tiny_runs(root, sft_steps=2)
            except AssertionError:
                raise RuntimeError("building the tiny checkpoint failed:\n" + quiet.getvalue()[-2000:]) from None
        dino16 = DinoEncoder(str(save_tiny_dinov2(root / "dino16", hidden_size=16, intermediate_size=32)))
        stage, model, cfg = load_stage(sft / "last")
        model.eval()

        t_prep, t32, t16, t_lm32, t_lm16, cos, same = [], [], [], [], [], [], []
        prep = prepare(Job(source=clip, out=root / "clip.npz"), with_crops=True)  # warm-up: MediaPipe's graph
        crops = prep.crops.reshape(-1, *prep.crops.shape[2:])
        enc32.encode(crops[:2]), enc16.encode(crops[:2])  # warm-up
        item = Prepared("clip", prep.keypoints, dino16.encode(crops).reshape(n_frames, 3, -1), clip)

        def decode():
            return decode(stage, [item], num_beams=5, max_new_tokens=cfg.train.max_new_tokens,
                             max_frames=cfg.data.max_frames)

        text32 = decode()
        for _ in range(runs):  # interleaved: the machine's load changes both alike
            t0 = time.perf_counter()
            prep = prepare(Job(source=clip, out=root / "clip.npz"), with_crops=True)  # decode, MediaPipe, crops
            t_prep.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            a = enc32.encode(crops)
            t32.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            b = enc16.encode(crops)
            t16.append(time.perf_counter() - t0)
            cos.append((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))
            t0 = time.perf_counter()
            decode()
            t_lm32.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                text16 = decode()
            t_lm16.append(time.perf_counter() - t0)
            same.append(text16 == text32)
    cos = np.concatenate(cos)
    t_dino_after = t16 if chosen == torch.bfloat16 else t32
    crops_n = len(crops)
    sec.rows += [
        Row("DINOv2-base float32", [crops_n / 3 / s for s in t32], "frames/s", f"{crops_n} real crops a run"),
        Row("DINOv2-base bfloat16", [crops_n / 3 / s for s in t16], "frames/s", "same crops, same weights"),
        Row("  bfloat16 speed-up", [a / b for a, b in zip(t32, t16)], "x"),
        Row("  1 - cosine(bf16, float32), largest over crops", [float(1 - cos.min())], "",
            f"cosine min {cos.min():.6f}, mean {cos.mean():.6f}; the bar for using bf16: cosine >= 0.999"),
        Row("sign LM decode, float32", t_lm32, "s", "the tests' tiny SFT checkpoint (demo-sized Qwen3), beam 5"),
        Row("sign LM decode, bf16 autocast", t_lm16, "s", f"same text as float32 in {sum(same)} of {len(same)} runs"),
        Row("  bfloat16 speed-up", [a / b for a, b in zip(t_lm32, t_lm16)], "x"),
        Row("compute per second of video, before (all float32)",
            [(p + d + lm) / seconds_of_video for p, d, lm in zip(t_prep, t32, t_lm32)], "s/s",
            f"{n_frames} frames = {seconds_of_video:.2f} s of video: decode + MediaPipe + crops, DINOv2-base, LM"),
        Row(f"compute per second of video, after (DINOv2 {str(chosen).split('.')[-1]}, LM float32)",
            [(p + d + lm) / seconds_of_video for p, d, lm in zip(t_prep, t_dino_after, t_lm32)], "s/s",
            "what `rvlf translate` runs on this CPU (`inference_dtype`)"),
        Row("  before / after", [(p + d0 + lm) / (p + d1 + lm) for p, d0, d1, lm in zip(t_prep, t32, t_dino_after,
                                                                                          t_lm32)], "x"),
    ]
    sec.notes.append(
        f"This CPU {'has' if native else 'lacks'} native bf16 (`torch.ops.mkldnn._is_mkldnn_bf16_supported()`: "
        f"AVX512-BF16/AMX), so `rvlf.data.features.inference_dtype('cpu')` is {chosen}. DINOv2-base: a random "
        "`Dinov2Model(Dinov2Config())` (768 wide, 12 layers, patch 14) saved and loaded as `DinoEncoder(path, "
        f"batch_size=32, dtype=...)`, encoding the 3 crops (face, hands) of each of the first {n_frames} frames of "
        "the fixture video, found by MediaPipe as `rvlf translate` finds them. The LM: `rvlf.inference.pipeline.decode` "
        "of the clip's keypoints and 16-dim DINOv2 features with the tests' tiny SFT checkpoint "
        "(`tests/conftest.py: tiny_runs`), float32 against `torch.autocast('cpu', dtype=torch.bfloat16)`; a "
        "Qwen3-0.6B LM would take a larger share of the time. Compute per second of video = (decode + MediaPipe + "
        "crops) + DINOv2-base + LM seconds of the same run / the clip's seconds; 'before' runs DINOv2 in float32, "
        "'after' in the dtype `rvlf translate` now picks; the LM stays float32 (benchmarks/analysis.md says why).")
    return sec
