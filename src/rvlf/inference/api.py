"""`SignTranslator`: a trained RVLF model from Python, loaded the way the field shares models.

    from rvlf import SignTranslator
    model = SignTranslator.from_pretrained("runs/demo/grpo/best")    # or an exported folder, or a hub id
    model.translate("signer.mp4")                                    # -> "the translation"
    model.translate(["a.mp4", "frames/", "b.pose"], return_scores=True)   # -> beam n-best with scores
    model.save_pretrained("my-model")                                # = `rvlf export`

Inputs are prepared exactly as `rvlf translate` prepares them (`rvlf.inference.pipeline.prepare_input`:
MediaPipe Holistic keypoints, face/hand crops with the Sec. 6.2 fallback, DINOv2 features) and
decoded by the checkpoint's stage (`rvlf.inference.loading.load_stage`), so the texts are the CLI's.

Every result says what a reader must know beside the text: `Translation.notice` when the model was
trained on the rvlf synthetic demo language (or does not record its training data,
`rvlf.train.training_data`), and `Translation.warnings` when the input is not plausibly signing (one frame
or a few, no hands in any frame; `rvlf.inference.pipeline.input_warnings`).

Every warning, error and `Translation.source` names an input the same way (`input_label`): a path as
given; an in-memory input by kind and shape, `array [20,77,3]`, or `inputs[2] (array [20,77,3])` when
`translate` is given a list.
"""

from __future__ import annotations

import logging
import os
import reprlib
import tempfile
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from rvlf import __version__
from rvlf.data.keypoints import NUM_POINTS
from rvlf.device import resolve_device
from rvlf.errors import InputFileError, RvlfError
from rvlf.hubcheck import switched_offline, use_cache_if_hub_unreachable
from rvlf.inference.model_paths import looks_like_hub_id
from rvlf.text.files import one_line
from rvlf.train.training_data import read as read_training_data

log = logging.getLogger("rvlf.inference.api")

_TRUE = {"1", "on", "yes", "true"}


class Translation(str):
    """One translation: the text itself (a `str`, so it prints and compares as the text), plus
    `warnings` (tuple of phrases: why the input is not plausibly signing, `input_warnings`; empty
    when nothing is wrong) and `notice` (the model's training-data notice, e.g. trained on the rvlf
    synthetic demo language; None for a model trained on real data) and `source` (the input's name as
    its warnings and errors give it, `input_label`: `clips/a.mp4`, `array [20,77,3]`; None when not known)."""

    warnings: tuple[str, ...]
    notice: str | None
    source: str | None

    def __new__(cls, text: str, warnings: Sequence[str] = (), notice: str | None = None, source: str | None = None):
        obj = super().__new__(cls, text)
        obj.warnings = tuple(warnings)
        obj.notice = notice
        obj.source = source
        return obj

    def __reduce__(self):
        return (Translation, (str(self), self.warnings, self.notice, self.source))

    @property
    def text(self) -> str:
        return str(self)


class NBest(list):
    """The beam's n-best for one input: a list of `Hypothesis`, best first, one per distinct text, with
    the same `warnings`, `notice` and `source` as `Translation`, and `merged`: how many of the beam's hypotheses
    are not listed because their text (whitespace runs as one space, `rvlf.text.files.one_line`) is
    that of a better one (two token sequences can decode to one text: " fast" and "fast", a stop
    token or a special token that decoding drops). `len(nbest) + nbest.merged` is the beam width."""

    def __init__(self, hypotheses=(), warnings: Sequence[str] = (), notice: str | None = None, merged: int = 0,
                 source: str | None = None):
        super().__init__(hypotheses)
        self.warnings = tuple(warnings)
        self.notice = notice
        self.merged = int(merged)
        self.source = source


class Hypothesis(NamedTuple):
    """One beam-search hypothesis: its text and its score, the mean natural-log probability per
    generated token (the end token included; beam search's length-normalised score, <= 0)."""

    text: str
    score: float


def hub_offline() -> bool:
    """True when `HF_HUB_OFFLINE` is set (read now, not at import time)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def resolve_pretrained(path_or_hub_id: str | os.PathLike, *, revision: str | None = None,
                       cache_dir: str | os.PathLike | None = None, token: str | bool | None = None) -> Path:
    """A local folder as it is, else a Hugging Face hub repo id (`owner/name`) through
    `huggingface_hub.snapshot_download`: the cached snapshot when `HF_HUB_OFFLINE` is set or the
    hub cannot be reached, else a download (files already cached are not fetched again).

    Raises `RvlfError` (one line) for a folder that does not exist, a hub id that is not cached
    while offline, a repository or revision the hub does not have."""
    text = os.fspath(path_or_hub_id)
    local = Path(text).expanduser()
    if local.is_dir():
        return local
    if local.exists():
        raise InputFileError(local, "is a file: give a model folder (exported or a checkpoint) or a hub id")
    if not looks_like_hub_id(text):
        raise InputFileError(local, "no such model folder (and not a hub id of the form owner/name)")
    # huggingface_hub: only for a hub id (a local folder needs no hub client)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    by_setting = hub_offline() and not switched_offline()
    offline = by_setting or use_cache_if_hub_unreachable(text)  # no network: the cache at once, no retries
    try:
        path = snapshot_download(text, revision=revision, cache_dir=cache_dir, token=token,
                                 local_files_only=offline, library_name="rvlf", library_version=__version__)
    except LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE is set" if by_setting else "the hub cannot be reached"
        if revision and _cached_repo(text, cache_dir).is_dir():
            raise RvlfError(f"{text}: revision {revision!r} is not in the Hugging Face cache (other revisions of this "
                            f"model are) while {why}; download it once with network "
                            f"(`hf download {text} --revision {revision}`) or pass another revision") from None
        raise RvlfError(f"{text}: no such local folder, and the hub model is not in the Hugging Face cache while "
                        f"{why}; download it once with network (`hf download {text}`) or pass a local folder") from None
    except RevisionNotFoundError:
        raise RvlfError(f"{text}: the hub has no revision {revision!r} of this model") from None
    except RepositoryNotFoundError:
        raise RvlfError(f"{text}: no such local folder, and no such model on the Hugging Face hub (a private "
                        "model needs `hf auth login` or token=...)") from None
    except HfHubHTTPError as err:
        raise RvlfError(f"{text}: the Hugging Face hub answered {str(err).splitlines()[0]}") from None
    except Exception as err:  # noqa: BLE001 - a network failure the hub client does not map to "offline"
        raise RvlfError(f"{text}: no such local folder, and the Hugging Face hub could not be asked "
                        f"({type(err).__name__}: {(str(err).splitlines() or [''])[0]}); pass a local folder, or "
                        "set HF_HUB_OFFLINE=1 to use the cache") from None
    return Path(path)


def _cached_repo(repo_id: str, cache_dir: str | os.PathLike | None) -> Path:
    """The hub cache's folder of model `repo_id` (`models--OWNER--NAME`), whether or not it exists."""
    # huggingface_hub: only for a hub id that is not in the cache (an error message)
    from huggingface_hub import constants

    return Path(cache_dir or constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))


class SignTranslator:
    """A trained RVLF model of any stage (stage 1's VLP decoder, SLT-SFT or SLT-GRPO), ready to translate.

    Build it with `from_pretrained`. Attributes: `stage` (`"pretrain"`, `"sft"` or `"grpo"`),
    `language` (ISO code of the output text), `directory` (the folder it was loaded from),
    `device`, `dino_model` (the DINOv2 that encodes face/hand crops; None when the stage uses
    none), `model` (the `torch.nn.Module`), `config` (the run's configuration dataclass),
    `training_data` (`rvlf.train.training_data.TrainingData`: what it was trained on) and `notice` (the
    line every result carries when that is the synthetic demo language or unknown, else None).
    """

    def __init__(self, stage, config, directory: str | Path, *, device: str = "cpu", dino_model: str | None = None):
        self._stage = stage
        self.config = config
        self.directory = Path(directory)
        self.device = str(device)
        self.model = stage.model
        self.model.to(self.device)
        self.model.eval()
        self.stage: str = stage.name
        self.language: str = config.data.language()
        self.dino_model = dino_model
        self.training_data = read_training_data(self.directory, config)
        self.notice: str | None = self.training_data.notice()
        if self.notice:
            log.warning("%s: notice: %s", self.directory, self.notice)

    def __repr__(self) -> str:
        return (f"SignTranslator(stage={self.stage!r}, language={self.language!r}, directory='{self.directory}', "
                f"device={self.device!r})")

    # ---- loading --------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path_or_hub_id: str | os.PathLike, *, device: str | None = None,
                        dino: str | None = None, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, token: str | bool | None = None) -> "SignTranslator":
        """Load a model folder: an exported one (`rvlf export`, `save_pretrained`), a checkpoint of any
        stage (`RUN/best`), a run folder (its `best`, else `last` checkpoint), or a Hugging Face hub id
        (`owner/name`, `revision=`; downloaded once into the hub cache, offline-safe, see
        `resolve_pretrained`).

        `device`: `"cpu"`, `"cuda"`, `"cuda:1"` (default: CUDA when available). `dino`: another
        DINOv2 (hub id or folder) for the face/hand crops than the model's own (`dinov2/`) or its
        config's `data.dino_model`. Raises `RvlfError` / `InputFileError` with one line for a folder
        that is not a model, a hub id it cannot get, a device that does not exist."""
        # torch and transformers (via rvlf.inference.loading): only when a model is loaded, so that
        # `from rvlf import SignTranslator` stays light
        from rvlf.inference.export import checkpoint_dir
        from rvlf.inference.loading import load_stage
        from rvlf.inference.model_folder import dino_source

        device = resolve_device(device, what="device")
        directory = checkpoint_dir(resolve_pretrained(path_or_hub_id, revision=revision, cache_dir=cache_dir,
                                                      token=token))
        stage, _, cfg = load_stage(directory)
        return cls(stage, cfg, directory, device=device, dino_model=dino or dino_source(directory, cfg))

    # ---- inputs ---------------------------------------------------------------------------------
    def prepare(self, item: Any, name: str | None = None):
        """One input -> `rvlf.inference.pipeline.Prepared` (pixel keypoints `[T,77,3]`, DINOv2 features
        `[T,3,D]` or None, crop boxes `[T,3,4]` when frames were decoded).

        `item` is one of:
        - a path (str or Path): video file, folder of frame images, image, keypoint file
          (`.pose`, `.pkl`, `.npz`) or `rvlf extract` feature file (`.npz`);
        - keypoints, a float array `[T,77,3]`: per frame the 77 points of rvlf's layout
          (`rvlf.data.keypoints.PARTS`: body 0:9, left hand 9:30, right hand 30:51, mouth 51:59,
          face 59:77) as (x, y, confidence); x, y in any one unit for the whole sequence (pixels or
          [0, 1]: each part is normalised by its own box, `normalize_keypoints`), confidence in
          [0, 1] with 0 = not found; non-finite points count as not found;
        - a dict `{"keypoints": [T,77,3], "dino": [T,3,D]}` (an `rvlf extract` feature file's
          content; `"dino"` optional: face, left hand, right hand CLS features);
        - video frames (MediaPipe and DINOv2 run on them like on a video), numpy or torch: RGB
          uint8 `[T,H,W,3]`; also RGBA `[T,H,W,4]` (alpha dropped), grayscale `[T,H,W]` or
          `[T,H,W,1]`, channels-first `[T,3,H,W]`, one frame `[H,W,3]` or `[H,W]`, floats in
          [0, 1] (torchvision's `ToTensor`) or [0, 255], other integer types in [0, 255], and a
          list or tuple of such frames of one size (one video: several videos are several
          arrays in `translate`'s list). See `as_rgb_frames` for how layouts are told apart.
        Keypoints without DINOv2 features give zero face/hand features (logged as a warning), as
        `rvlf translate` does for keypoint files. Anything else raises `RvlfError` listing the
        accepted layouts; `InputFileError` / `RvlfError` name the input. `name`: what warnings, errors
        and the result call it (default `input_label(item)`: `array [20,77,3]`; a file's own name
        is its stem, or `name` when given).
        """
        # torch (via rvlf.inference.pipeline): with the model (see from_pretrained)
        from rvlf.inference.pipeline import Prepared, prepare_input

        if isinstance(item, (str, os.PathLike)):  # frames data.max_frames drops are never extracted
            p = prepare_input(item, self.dino_model, device=self.device, max_frames=self.config.data.max_frames,
                              long_inputs=self.config.data.long_inputs)
            p.name = name or p.name
            return p
        label = name or input_label(item)
        if _is_tensor(item):
            item = item.detach().cpu().numpy()
        if isinstance(item, dict):
            if "keypoints" not in item:
                raise RvlfError(f"{label}: a dict input needs 'keypoints' [T,77,3] (and optionally 'dino' [T,3,D])")
            kp = _keypoints(np.asarray(item["keypoints"]), label)
            dino = item.get("dino")
            if dino is not None:
                dino = np.asarray(dino, dtype=np.float32)
                if dino.ndim != 3 or dino.shape[:2] != (len(kp), 3):
                    raise RvlfError(f"{label}: 'dino' has shape {list(dino.shape)}; expected [T,3,D] with T = "
                                    f"{len(kp)} frames (face, left hand, right hand)")
            else:
                _warn_no_dino(self, label)
            return Prepared(label, kp, dino, Path(label))
        if isinstance(item, (list, tuple)):  # one video's frames (cv2 / decord / PIL users hold them so)
            return self._prepare_frames(_stack_frames(item, label), label)
        if isinstance(item, np.ndarray):
            frames = as_rgb_frames(item, label)
            if frames is not None:
                return self._prepare_frames(frames, label)
            kp = _keypoints(item, label)
            _warn_no_dino(self, label)
            return Prepared(label, kp, None, Path(label))
        kind = type(item).__name__  # not an array: its label is `input` (or `inputs[i]`), this line says its type
        raise RvlfError(f"{label}: cannot translate {'an' if kind[0] in 'aeiou' else 'a'} {kind} "
                        f"({reprlib.repr(item)}); give {ACCEPTED}")

    def _prepare_frames(self, frames: np.ndarray, label: str):
        # PIL and torch (via rvlf.data.dataset): loaded with the model, not with `from rvlf import SignTranslator`
        from PIL import Image

        from rvlf.data.dataset import select_frames
        from rvlf.inference.pipeline import prepare_input

        if len(frames) == 0:
            raise RvlfError(f"{label}: no frames")
        keep = select_frames(len(frames), self.config.data.max_frames, self.config.data.long_inputs)
        with tempfile.TemporaryDirectory(prefix="rvlf-frames-") as tmp:
            folder = Path(tmp) / "frames"  # not the label: it may hold a "/" (a path in `name`)
            folder.mkdir()
            for t, frame in enumerate(frames[keep]):  # frames data.max_frames drops are never extracted
                Image.fromarray(frame).save(folder / f"{t:06d}.png", compress_level=1)
            p = prepare_input(folder, self.dino_model, device=self.device)
        p.name, p.source = label, Path(label)
        p.num_frames, p.frames = len(frames), keep
        return p

    # ---- decoding -------------------------------------------------------------------------------
    def translate(self, inputs: Any | Sequence[Any], num_beams: int | None = None, return_scores: bool = False, *,
                  max_new_tokens: int | None = None, batch_size: int = 8):
        """Translate one input or a list of inputs (see `prepare` for what an input can be).

        Returns for one input its text (a `Translation`: a `str` with `.warnings` and `.notice`), for
        a list a list of them in order. With `return_scores=True` each text is replaced by the beam's
        n-best list (an `NBest`, also with `.warnings` and `.notice`): its `num_beams` hypotheses as
        `Hypothesis(text, score)`, best first, one per distinct text (score: mean natural-log
        probability per token, higher is better; `n_best[0].text` is the text `return_scores=False`
        gives); fewer than `num_beams` when hypotheses decode to the same text, and `.merged` says
        how many were (`len(n_best) + n_best.merged == num_beams`). `.notice` says when the model was trained on the rvlf synthetic demo language;
        `.warnings` when the input is not plausibly signing (`rvlf.inference.pipeline.input_warnings`; each is
        also logged).
        `num_beams`: beam width (1 = greedy); default the checkpoint's `train.num_beams` (5 in the paper,
        Sec. 4.1), as `rvlf translate` and `rvlf evaluate`, so the texts are theirs. `max_new_tokens`: default
        the checkpoint's `train.max_new_tokens`. Inputs longer than the checkpoint's
        `data.max_frames` lose frames as in training (`data.long_inputs`: truncate or subsample; a
        warning says how many); frames of videos and frame arrays that are dropped never reach
        MediaPipe or DINOv2. Inputs are decoded `batch_size` at a time.
        Raises `InputFileError` / `RvlfError` (one line naming the input) for an input it cannot read
        and for one in which no signer's body is found in any frame (`rvlf translate` skips those).
        """
        single = not isinstance(inputs, (list, tuple)) or _is_frame_list(inputs)
        items = [inputs] if single else list(inputs)
        index = len(items) > 1  # several inputs: each in-memory one is named by its place, `inputs[2] (...)`
        prepared = [self.prepare(x, name=input_label(x, i if index else None)) for i, x in enumerate(items)]
        out = self.translate_prepared(prepared, num_beams=num_beams, return_scores=return_scores,
                                      max_new_tokens=max_new_tokens, batch_size=batch_size)
        return out[0] if single else out

    def translate_prepared(self, prepared: list, *, num_beams: int | None = None, return_scores: bool = False,
                           max_new_tokens: int | None = None, batch_size: int = 8) -> list:
        """`translate` for inputs already `prepare`d (a list of `rvlf.inference.pipeline.Prepared`)."""
        # torch (via rvlf.data.dataset, rvlf.inference.pipeline): with the model (see from_pretrained)
        from rvlf.data.dataset import check_long_inputs, long_input_note
        from rvlf.inference.pipeline import decode, input_warnings, no_signer

        if num_beams is None:
            num_beams = self.config.train.num_beams
        if num_beams < 1:
            raise RvlfError(f"num_beams must be >= 1, got {num_beams}")
        if batch_size < 1:
            raise RvlfError(f"batch_size must be >= 1, got {batch_size}")
        max_new = max_new_tokens or self.config.train.max_new_tokens
        max_frames = self.config.data.max_frames
        policy = check_long_inputs(self.config.data.long_inputs)
        warnings = []
        for p in prepared:
            problem = no_signer(p)
            if problem:  # never a fluent sentence for a video without a signer
                raise RvlfError(problem)
            note = long_input_note(p.name, p.input_frames, max_frames, policy)
            if note:
                log.warning("%s", note)
            warnings.append(input_warnings(p))
        results: list = []
        for start in range(0, len(prepared), batch_size):
            chunk = prepared[start:start + batch_size]
            decoder = BeamDecoder(self._stage, return_scores)
            texts = decode(decoder, chunk, num_beams=num_beams, max_new_tokens=max_new, max_frames=max_frames,
                           device=self.device, long_inputs=policy)
            results += decoder.nbest if return_scores else texts
        for p, ws in zip(prepared, warnings):  # logged once decoded, beside the result they belong to
            for w in ws:
                log.warning("%s: warning: %s", p.name, w)
        if return_scores:
            return [NBest(r, w, self.notice, r.merged, source=p.name) for r, w, p in zip(results, warnings, prepared)]
        return [Translation(r, w, self.notice, source=p.name) for r, w, p in zip(results, warnings, prepared)]

    # ---- saving ---------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, *, base: str = "merge", license: str | None = None,
                        dataset: str | None = None) -> Path:
        """Write this model as a self-contained folder with a model card (what `rvlf export` writes;
        `rvlf.inference.model_folder` lists its files). `base="merge"` folds the LoRA adapters into the
        language model (this object then decodes with the merged LM: same texts); `"reference"`
        keeps the adapters and names the base LM by hub id. Returns the folder. Raises `RvlfError`
        for a folder holding other files, or a reference to a base LM that no hub has."""
        # transformers (via rvlf.inference.export): with the model (see from_pretrained)
        from rvlf.inference.export import export_stage

        return export_stage(self._stage, self.config, directory, source=self.directory, base=base, license=license,
                            dataset=dataset)


class BeamDecoder:
    """Stands in for a stage in `rvlf.inference.pipeline.decode` (which builds the batch as the CLI does)
    and decodes it: the stage's own beam search, or the beam's n-best with scores."""

    def __init__(self, stage, with_scores: bool):
        self._stage = stage
        self.cfg = stage.cfg
        self.with_scores = with_scores
        self.nbest: list[NBest] = []

    def decode(self, batch: dict, num_beams: int, max_new_tokens: int) -> list[str]:
        if not self.with_scores:
            return self._stage.decode(batch, num_beams, max_new_tokens)
        self.nbest = beam_hypotheses(self._stage, batch, num_beams, max_new_tokens)
        return [hyps[0].text for hyps in self.nbest]


def beam_hypotheses(stage, batch: dict, num_beams: int, max_new_tokens: int) -> list[NBest]:
    """The finished hypotheses of beam search per input, best first, with their scores: one `NBest` per
    input of the `num_beams` hypotheses less those whose text (`one_line`) a better one already has
    (kept once, with the best score; `NBest.merged` counts them). Beam search (transformers'
    `generate`, `num_return_sequences=num_beams`) keeps distinct token sequences, not distinct texts,
    so a list can be shorter than the beam; a wider beam can find more distinct texts."""
    import torch  # with the model (see SignTranslator.from_pretrained); not at `from rvlf import SignTranslator`

    model = stage.model
    with torch.no_grad():
        if hasattr(model, "encode_signs"):  # stages 2-3: rvlf.models.slt_lm.SignLanguageLM
            out = model.generate(batch["keypoints"], batch["frame_mask"], batch.get("dino"), num_beams=num_beams,
                                 num_return_sequences=num_beams, max_new_tokens=max_new_tokens, return_scores=True)
            texts, scores = out.texts, out.scores
        else:  # stage 1: rvlf.models.vlp.VLPModel
            tokens, scores = model.generate(batch["keypoints"], batch["frame_mask"], num_beams=num_beams,
                                            max_new_tokens=max_new_tokens, num_return_sequences=num_beams,
                                            return_scores=True)
            texts = stage.tokenizer.batch_decode(tokens)
    scores = scores.tolist()
    out = []
    for b in range(len(texts) // num_beams):
        hyps: dict[str, Hypothesis] = {}  # two token sequences can decode to one text: keep its best
        for i in range(b * num_beams, (b + 1) * num_beams):
            key = one_line(texts[i])
            if key not in hyps or scores[i] > hyps[key].score:
                hyps[key] = Hypothesis(texts[i], float(scores[i]))
        out.append(NBest(sorted(hyps.values(), key=lambda h: -h.score), merged=num_beams - len(hyps)))
    return out


def input_label(item: Any, index: int | None = None) -> str:
    """How warnings, errors and `Translation.source` name an input: a path as given (`clips/a.mp4`);
    an in-memory one by kind and shape: `array [20,77,3]`, `tensor [20,3,224,224]`, `list of 20 frames
    [224,224,3]` (a tuple: `tuple of ...`), `dict (keypoints [20,77,3])`; an object of another kind is
    `input` (its error says its type). `index`: its place in `translate`'s list, for an in-memory input
    `inputs[2] (array [20,77,3])` (`inputs[2]` for another kind); a path names itself wherever it is."""
    if isinstance(item, (str, os.PathLike)):
        return str(os.fspath(item))
    if _is_tensor(item) or isinstance(item, np.ndarray):
        what = f"{'tensor' if _is_tensor(item) else 'array'} {_shape(item.shape)}"
    elif isinstance(item, dict):
        kp = item.get("keypoints")
        what = "dict" if kp is None else f"dict (keypoints {_shape(_shape_of(kp))})"
    elif isinstance(item, (list, tuple)):
        first = _shape_of(item[0]) if item else None
        what = (f"{type(item).__name__} of {len(item)} frame{'' if len(item) == 1 else 's'}"
                + (f" {_shape(first)}" if first is not None else ""))
    else:
        return "input" if index is None else f"inputs[{index}]"
    return what if index is None else f"inputs[{index}] ({what})"


def _shape_of(x: Any) -> tuple[int, ...] | None:
    """The shape of an array, tensor or nested list (None for a ragged list or a non-array)."""
    if hasattr(x, "shape"):
        return tuple(x.shape)
    try:
        return np.shape(x)
    except ValueError:  # ragged nested lists
        return None


def _shape(shape) -> str:
    return "[?]" if shape is None else "[" + ",".join(str(int(n)) for n in shape) + "]"


def _is_tensor(x) -> bool:
    try:
        # torch: with the model (see SignTranslator.from_pretrained); not at `from rvlf import SignTranslator`
        import torch
    except ImportError:  # pragma: no cover
        return False
    return torch.is_tensor(x)


ACCEPTED = ("a path (video, frame folder, image, keypoint or feature file); video frames as RGB uint8 [T,H,W,3], "
            "RGBA [T,H,W,4], grayscale [T,H,W], channels-first [T,3,H,W], one frame [H,W,3], a list of [H,W,3] "
            "frames, or floats in [0,1]; keypoints float [T,77,3]; or a dict {'keypoints': [T,77,3], "
            "'dino': [T,3,D]}")
_CHANNELS = (1, 3, 4)


def _is_frame_list(items: Sequence[Any]) -> bool:
    """Is a list given to `translate` one video's frames (every item a 2-D or 3-D image, numpy or
    torch, none of them keypoint-like) rather than a list of inputs? Several single-frame inputs
    are given as `[1,H,W,3]` arrays."""
    if not items or not all(isinstance(x, np.ndarray) or _is_tensor(x) for x in items):
        return False
    arrays = [x.detach().cpu().numpy() if _is_tensor(x) else x for x in items]
    return all(a.ndim in (2, 3) and not _keypoint_like(a) for a in arrays)


def _keypoint_like(arr: np.ndarray) -> bool:
    """A float `[T,N,C]` array with C in 2..4 (x, y[, z], confidence): keypoints, not an image."""
    return arr.ndim == 3 and np.issubdtype(arr.dtype, np.floating) and arr.shape[-1] in (2, 3, 4)


def _stack_frames(items: Sequence[Any], label: str) -> np.ndarray:
    """A list or tuple of frames (numpy or torch, `[H,W,C]` / `[C,H,W]` / `[H,W]`) -> RGB uint8 `[T,H,W,3]`."""
    if not items:
        raise RvlfError(f"{label}: an empty list of frames")
    arrays = [np.asarray(x.detach().cpu().numpy() if _is_tensor(x) else x) for x in items]
    for t, a in enumerate(arrays):
        if a.ndim not in (2, 3) or a.shape != arrays[0].shape:
            what = (f"frame {t} has shape {list(a.shape)}, frame 0 {list(arrays[0].shape)}" if a.ndim in (2, 3)
                    else f"item {t} has shape {list(a.shape)}, not a frame [H,W,3]")
            raise RvlfError(f"{label}: a list is one video's frames, all of one size: {what}; give {ACCEPTED}")
    frames = as_rgb_frames(np.stack(arrays), label, keypoints=False)
    assert frames is not None
    return frames


def as_rgb_frames(arr: np.ndarray, label: str = "array", *, keypoints: bool = True) -> np.ndarray | None:
    """Video frames in a common layout -> RGB uint8 `[T,H,W,3]`; None for a keypoint array.

    Layouts (T frames of H x W pixels): `[T,H,W,C]` with C = 3 (RGB), 4 (RGBA: alpha dropped) or
    1 (grayscale); channels-first `[T,C,H,W]` (PyTorch) when the last axis is not 1, 3 or 4;
    `[T,H,W]` grayscale; one frame `[H,W,C]` or `[H,W]`. Values: uint8 as they are; other
    integer types in [0, 255]; floats in [0, 1] (scaled by 255, torchvision's `ToTensor`) or
    else in [0, 255]. With `keypoints` (default), a float `[T,N,C]` array with C in 2..4 is
    keypoints (None is returned; a float `[H,W,3]` frame must be given as `[1,H,W,3]` or uint8).
    Raises `RvlfError` listing the accepted layouts for anything else (normalised frames with
    negative values, bool or string arrays, 5-D arrays, no frames)."""
    arr = np.asarray(arr)
    floating = np.issubdtype(arr.dtype, np.floating)
    if not (floating or np.issubdtype(arr.dtype, np.integer)) or arr.dtype == np.bool_:
        raise RvlfError(f"{label}: an array of {arr.dtype} is neither frames nor keypoints; give {ACCEPTED}")
    if keypoints and _keypoint_like(arr):
        return None
    if arr.ndim == 2:                                       # one grayscale frame
        arr = arr[None, :, :, None]
    elif arr.ndim == 3:                                     # one frame [H,W,C], or grayscale frames [T,H,W]
        arr = arr[None] if arr.shape[-1] in _CHANNELS[1:] and not floating else arr[..., None]
    elif arr.ndim != 4:
        raise RvlfError(f"{label}: an array of shape {list(arr.shape)} is neither frames nor keypoints; "
                        f"give {ACCEPTED}")
    if arr.shape[-1] not in _CHANNELS and arr.shape[1] in _CHANNELS:
        arr = arr.transpose(0, 2, 3, 1)                     # channels-first [T,C,H,W]
    if arr.shape[-1] not in _CHANNELS or min(arr.shape[1:3]) < 1:
        raise RvlfError(f"{label}: frames of shape {list(arr.shape)} have {arr.shape[-1]} channels; give {ACCEPTED}")
    if len(arr) == 0:
        raise RvlfError(f"{label}: no frames")
    if arr.dtype != np.uint8:
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi > 255:
            raise RvlfError(f"{label}: {arr.dtype} frames with values from {lo:g} to {hi:g}; frames must be in "
                            "[0, 1] or [0, 255] (normalised with a mean and std? pass the frames before "
                            f"normalising); accepted: {ACCEPTED}")
        arr = np.rint(arr * 255.0 if floating and hi <= 1.0 else arr).astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.ascontiguousarray(arr[..., :3])


def _keypoints(arr: np.ndarray, label: str) -> np.ndarray:
    """`[T,77,3]` float32 keypoints, non-finite points set to not found (confidence 0).

    Confidence (the third value) must be in [0, 1]: MediaPipe's visibility, COCO scores; values
    beyond (a percentage, a heatmap score) are an `RvlfError`, not clipped: rvlf thresholds them
    at 0.3 (`part_found`), so 0..100 would count every point as found."""
    if arr.ndim != 3 or arr.shape[1:] != (NUM_POINTS, 3) or not np.issubdtype(arr.dtype, np.number):
        raise RvlfError(f"{label}: keypoints have shape {list(arr.shape)}; expected [T,{NUM_POINTS},3] (x, y, "
                        "confidence) in rvlf's 77-point layout (convert Holistic or COCO-WholeBody points with "
                        "rvlf.data.keypoints.from_holistic / from_coco_wholebody); for video frames give RGB "
                        "uint8 [T,H,W,3] or another layout of: " + ACCEPTED)
    if len(arr) == 0:
        raise RvlfError(f"{label}: no frames")
    kp = np.asarray(arr, dtype=np.float32).copy()
    bad = ~np.isfinite(kp).all(axis=-1)
    kp[bad] = 0.0
    conf = kp[..., 2]
    if conf.size and (conf.min() < 0 or conf.max() > 1):
        hint = " (a percentage? divide by 100)" if conf.max() <= 100 and conf.min() >= 0 else ""
        raise RvlfError(f"{label}: keypoint confidence (the third value) ranges from {conf.min():g} to "
                        f"{conf.max():g}; it must be in [0, 1], 0 = not found{hint}")
    return kp


def _warn_no_dino(translator: SignTranslator, label: str) -> None:
    if translator.dino_model is not None:
        log.warning("%s: warning: keypoints only - no frames to crop, so the DINOv2 face/hand features are zeros", label)
