"""The embedded demo corpus: a deterministic synthetic sign language (see docs/demo-corpus.md).

`generate_corpus(out_dir)` writes `manifest.jsonl` (the JSONL manifest of docs/architecture.md,
plus `gloss` and `phrasings`), `features/<id>.npz` (keypoints `[T,77,3]` in pixels of a 512x512
frame and DINOv2 features `[T,3,D]` of face / left hand / right hand crops, Sec. 3.2 and 6.2),
and last a `corpus.json` stamp. Same seed and parameters -> byte-identical texts and keypoints;
a complete corpus with the same stamp is returned at once.

The grammar is in `rvlf.synth.grammar`, signs, signers and crops in `rvlf.synth.render`.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rvlf import atomic
from rvlf.data.crops import crop_boxes
from rvlf.data.features import DinoEncoder, save_tiny_dinov2, save_video_features
from rvlf.errors import RvlfError
from rvlf.progress import progress
from rvlf.synth import grammar, render

VERSION = 1
LANG = "en"


@dataclass(frozen=True)
class CorpusConfig:
    """Difficulty knobs of the synthetic corpus (defaults: the demo's)."""

    n_signers: int = 8
    left_handed_fraction: float = 0.125     # left-handers mirror the manual channel
    frames_per_sign: tuple[int, int] = (3, 6)  # at speed 1, inclusive range
    speed_range: tuple[float, float] = (0.8, 1.25)
    transition_frames: int = 1              # eased movement between signs
    coarticulation: float = 1.0             # std (frames) of the smoothing that blends neighbours
    sign_jitter: float = 1.0                # token-to-token variation of location and movement size
    noise: float = 0.3                      # keypoint jitter scale (1 ~ a few pixels, MediaPipe-like)
    missing_hand_rate: float = 0.25         # fraction of frames a hand is not detected
    face_missing_rate: float = 0.02
    paraphrase_temperature: float = 0.5     # reference drawn with p ~ w^(1/T); 0 = always the likeliest
    crop_size: int = 56                     # side of the drawn crops; the paper uses 224 (see docs)

    def validate(self) -> None:
        lo, hi = self.frames_per_sign
        checks = [
            (self.n_signers >= 1, "n_signers must be >= 1"),
            (0 <= self.left_handed_fraction <= 1, "left_handed_fraction must be in [0, 1]"),
            (1 <= lo <= hi, "frames_per_sign must be (lo, hi) with 1 <= lo <= hi"),
            (0 < self.speed_range[0] <= self.speed_range[1], "speed_range must be (lo, hi) with 0 < lo <= hi"),
            (0 <= self.missing_hand_rate < 1, "missing_hand_rate must be in [0, 1)"),
            (0 <= self.face_missing_rate < 1, "face_missing_rate must be in [0, 1)"),
            (self.noise >= 0 and self.sign_jitter >= 0 and self.coarticulation >= 0, "noise, sign_jitter and coarticulation must be >= 0"),
            (self.transition_frames >= 0, "transition_frames must be >= 0"),
            (self.paraphrase_temperature >= 0, "paraphrase_temperature must be >= 0"),
            (14 <= self.crop_size <= 518, "crop_size must be in [14, 518]"),
        ]
        for ok, msg in checks:
            if not ok:
                raise RvlfError(f"CorpusConfig: {msg}")


@dataclass
class Corpus:
    """Everything generated before rendering: sentences per split, the sign lexicon, signers."""

    splits: grammar.Splits
    lexicon: dict[str, render.SignSpec]
    signers: list[render.Signer]


def build_corpus(seed: int, n_train: int, n_dev: int, n_test: int, config: CorpusConfig) -> Corpus:
    """The sentences, signs and signers of a corpus (cheap: no rendering)."""
    config.validate()
    splits = grammar.build_splits(seed, n_train, n_dev, n_test)
    lexicon = render.make_lexicon(grammar.all_glosses(), grammar.FACE_PAIRS, grammar.HANDSHAPE_GROUPS,
                                  np.random.default_rng([seed, 2]))
    n_left = int(round(config.left_handed_fraction * config.n_signers))
    signers = [render.make_signer(np.random.default_rng([seed, 3, k]), k >= config.n_signers - n_left,
                                  config.speed_range) for k in range(config.n_signers)]
    return Corpus(splits, lexicon, signers)


def draw_reference(sentence: grammar.Sentence, rng: np.random.Generator, temperature: float) -> str:
    """One phrasing with probability ~ weight^(1/temperature) (temperature 0: the likeliest)."""
    w = np.asarray(sentence.weights)
    if temperature == 0:
        return sentence.phrasings[int(np.argmax(w))]
    p = w ** (1.0 / temperature)
    return sentence.phrasings[int(rng.choice(len(p), p=p / p.sum()))]


@dataclass
class Sample:
    """One rendered video: observed keypoints, the clean scene behind them, and its labels."""

    keypoints: np.ndarray      # float32 [T,77,3]
    scene: render.Scene
    signer: int
    sign_index: np.ndarray     # [T] sign of each frame, -1 in transitions / rest
    background: tuple[int, int, int]


def render_sample(corpus: Corpus, sentence: grammar.Sentence, rng: np.random.Generator,
                  config: CorpusConfig) -> Sample:
    """Signer, framing, timing, states, keypoints and estimator errors of one sentence."""
    k = int(rng.integers(len(corpus.signers)))
    signer = corpus.signers[k]
    lo, hi = config.frames_per_sign
    frames = [max(2, int(round(rng.integers(lo, hi + 1) / signer.speed))) for _ in sentence.gloss]
    specs = [corpus.lexicon[g] for g in sentence.gloss]
    states, labels = render.sentence_states(specs, frames, config.transition_frames, config.coarticulation, rng,
                                            config.sign_jitter)
    if sentence.question and sentence.gloss[-1] == "QM":      # yes/no questions: brows up throughout
        states[:, render.FACE][:, 2] = np.maximum(states[:, render.FACE][:, 2], 0.8)
    unit = signer.unit * rng.uniform(0.93, 1.07)
    neck = np.array([256.0, 290.0]) + rng.normal(0, [10.0, 8.0])
    scene = render.scene_points(states, signer, neck, unit)
    kp = render.observe(scene, rng, config.noise, config.missing_hand_rate, config.face_missing_rate)
    bg = tuple(int(np.clip(c + rng.integers(-20, 21), 0, 255)) for c in signer.background)
    return Sample(kp, scene, k, labels, bg)


def sample_crops(sample: Sample, corpus: Corpus, config: CorpusConfig) -> tuple[np.ndarray, np.ndarray]:
    """Crops of the frames where each part was found, and for every (frame, part) the row of
    its crop (Sec. 6.2: a frame where a part is missed reuses the most recent found frame;
    before the first detection, the first one), -1 where a part is never found.

    Returns `uint8 [N,S,S,3]` (S = `config.crop_size`) and `int64 [T,3]`."""
    boxes, found = crop_boxes(sample.keypoints, render.FRAME)
    T = len(found)
    signer = corpus.signers[sample.signer]
    rows = np.full((T, 3), -1, dtype=np.int64)
    images = []
    frames = np.arange(T)
    for p in range(3):
        if not found[:, p].any():
            continue
        src = np.maximum.accumulate(np.where(found[:, p], frames, -1))
        src[src < 0] = np.argmax(found[:, p])
        first_row = sum(len(im) for im in images)
        images.append(render.draw_crops(sample.scene, frames[found[:, p]], boxes[found[:, p], p], signer,
                                        sample.background, config.crop_size))
        rank = np.cumsum(found[:, p]) - 1
        rows[:, p] = first_row + rank[src]
    if not images:
        return np.zeros((0, config.crop_size, config.crop_size, 3), np.uint8), rows
    return np.concatenate(images), rows


def _stamp(seed: int, n_train: int, n_dev: int, n_test: int, dino: str | None, config: CorpusConfig) -> dict:
    return {"version": VERSION, "seed": seed, "n_train": n_train, "n_dev": n_dev, "n_test": n_test,
            "dino": dino, "config": dataclasses.asdict(config)}


# --- workers --------------------------------------------------------------------------------
_STATE: dict = {}


def _init_worker(corpus: Corpus, config: CorpusConfig, seed: int, dino_path: str | None, out_dir: str,
                 one_thread: bool = True) -> None:
    if one_thread:  # pool workers: one core each
        # torch: only to pin a pool worker's threads (rendering and saving keypoints need no torch)
        import torch

        torch.set_num_threads(1)
    _STATE.update(corpus=corpus, config=config, seed=seed, out_dir=Path(out_dir), encoder=None)
    if dino_path:
        _STATE["encoder"] = DinoEncoder(dino_path, batch_size=128)


def _make_one(job: tuple[int, str, str, int]) -> dict:
    """Render, encode and save one sample; returns its manifest row."""
    index, sid, split, pos = job
    corpus, config, encoder = _STATE["corpus"], _STATE["config"], _STATE["encoder"]
    sentence = getattr(corpus.splits, split)[pos]
    rng = np.random.default_rng([_STATE["seed"], 4, index])
    text = draw_reference(sentence, rng, config.paraphrase_temperature)
    sample = render_sample(corpus, sentence, rng, config)
    dino = None
    if encoder is not None:
        images, rows = sample_crops(sample, corpus, config)
        feats = encoder.encode(images) if len(images) else np.zeros((0, encoder.dim), np.float32)
        dino = np.zeros((len(rows), 3, encoder.dim), np.float32)
        dino[rows >= 0] = feats[rows[rows >= 0]]
    rel = f"features/{sid}.npz"
    meta = {"synthetic": True, "frame_size": list(render.FRAME), "gloss": list(sentence.gloss),
            "signer": f"signer{sample.signer}", "sign_index": sample.sign_index.tolist()}
    save_video_features(_STATE["out_dir"] / rel, sample.keypoints, dino, meta)
    return {"id": sid, "split": split, "text": text, "lang": LANG, "features": rel,
            "signer": f"signer{sample.signer}", "num_frames": int(len(sample.keypoints)),
            "gloss": " ".join(sentence.gloss), "phrasings": list(sentence.phrasings)}


def generate_corpus(
    out_dir: str | Path,
    *,
    seed: int = 0,
    n_train: int = 2000,
    n_dev: int = 200,
    n_test: int = 200,
    dino: str | Path | None = "tiny",
    workers: int = 1,
    progress: bool = True,
    config: CorpusConfig | None = None,
) -> Path:
    """Write the corpus into `out_dir` and return it (at once if it is already complete).

    `dino`: "tiny" saves a random-initialised tiny DINOv2 to `out_dir/dinov2-tiny` and uses it;
    a path loads that DINOv2 (e.g. facebook/dinov2-base weights); None writes keypoints only.
    """
    config = config or CorpusConfig()
    if min(n_train, n_dev, n_test) < 1:
        raise RvlfError("generate_corpus: n_train, n_dev and n_test must be >= 1")
    if workers < 1:
        raise RvlfError(f"generate_corpus: workers must be >= 1, got {workers}")
    out = Path(out_dir)
    stamp = _stamp(seed, n_train, n_dev, n_test, None if dino is None else str(dino), config)
    stamp_path = out / "corpus.json"
    if stamp_path.is_file():
        try:
            if json.loads(stamp_path.read_text(encoding="utf-8")) == json.loads(json.dumps(stamp)):
                return out
        except (OSError, ValueError):
            pass
        stamp_path.unlink()
    corpus = build_corpus(seed, n_train, n_dev, n_test, config)
    (out / "features").mkdir(parents=True, exist_ok=True)
    dino_path = None
    if dino == "tiny":
        dino_path = str(save_tiny_dinov2(out / "dinov2-tiny", image_size=config.crop_size, seed=seed))
    elif dino is not None:
        dino_path = str(dino)

    jobs = []
    for split in ("train", "dev", "test"):
        for pos in range(len(getattr(corpus.splits, split))):
            jobs.append((len(jobs), f"{split}-{pos:05d}", split, pos))
    init = (corpus, config, seed, dino_path, str(out))
    bar = _progress(len(jobs), progress)
    rows = []
    if workers == 1:
        _init_worker(*init, one_thread=False)
        for job in jobs:
            rows.append(_make_one(job))
            bar.update(1)
        _STATE.clear()
    else:
        # fork (as torch's DataLoader does on Linux): no `__main__` guard needed in user scripts
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        ctx = multiprocessing.get_context(method)
        with ctx.Pool(workers, initializer=_init_worker, initargs=init) as pool:
            for row in pool.imap(_make_one, jobs, chunksize=16):
                rows.append(row)
                bar.update(1)
    bar.close()
    atomic.write_text(out / "manifest.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    atomic.write_text(stamp_path, json.dumps(stamp, indent=1) + "\n")
    return out


def _progress(total: int, enabled: bool):
    return progress(total, desc="demo corpus", unit="video", enabled=enabled)
