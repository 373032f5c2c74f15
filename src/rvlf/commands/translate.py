"""`rvlf translate`: videos, frame folders, images, keypoint or feature files -> text."""

import json
import sys
from collections import Counter
import time
from pathlib import Path

from rvlf.commands._common import check_output_file, positive_int
from rvlf.inference.model_paths import check_model_arg
from rvlf.errors import InputFileError, RvlfError
from rvlf.text.files import one_line


def register(sub) -> None:
    p = sub.add_parser("translate", help="translate videos, frame folders or keypoint files with a checkpoint",
                       description="Keypoints (MediaPipe Holistic), face/hand crops and DINOv2 features are computed "
                                   "as `rvlf extract` does, then the checkpoint decodes with beam search (the models "
                                   "are loaded once for all inputs). Prints one line per input: NAME<TAB>TRANSLATION; "
                                   "with --nbest K, K lines per input: NAME<TAB>RANK<TAB>SCORE<TAB>TRANSLATION; with "
                                   "--json, one JSON object per input (fields: see --json). On stderr: inputs in "
                                   "which no signer is found (not translated; exit code 1), inputs it cannot read "
                                   "(the others are still translated; exit code 1) and inputs longer than the "
                                   "checkpoint's data.max_frames (how many frames data.long_inputs dropped; those frames are never run "
                                   "through MediaPipe or DINOv2), a notice when the model was trained on the rvlf "
                                   "synthetic demo language, and a warning for each input that is not plausibly "
                                   "signing (a still image or a few frames, no hands in any frame; also in --json's "
                                   "warnings). "
                                   "DINOv2 runs in bfloat16 on CPUs with native bf16 (RVLF_DINO_DTYPE=float32 "
                                   "turns it off), the sign LM in float32.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video file, folder of frames, image, keypoint file (.pose/.pkl/.npz) or rvlf feature file")
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint folder of any stage (RUN/best), exported model folder, a run folder (its best "
                        "checkpoint, else its last), or a Hugging Face hub id owner/name (from the hub cache when "
                        "HF_HUB_OFFLINE is set or the hub cannot be reached)")
    p.add_argument("--revision", default=None, help="hub revision (branch, tag or commit) of a hub id --checkpoint")
    p.add_argument("--dino", default=None,
                   help="DINOv2 model (hub id or folder); default: the checkpoint's own copy, else its data.dino_model")
    p.add_argument("--num-beams", type=positive_int, default=None, help="beam width (default: the checkpoint's train.num_beams; 5 in the paper's and the demo's configs, 2 in the --quick demo's; --nbest K needs K or more)")
    p.add_argument("--show", default=None, metavar="OUT.mp4",
                   help="write the (single) input video with keypoints, crop boxes and the translation drawn on it "
                        "(H.264 mp4 that browsers play; WebM where PyAV lacks an H.264 encoder)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--nbest", type=positive_int, default=None, metavar="K",
                   help="the K best distinct hypotheses of the beam per input, best first, each with its score (mean "
                        "log-probability per generated token, <= 0); K may not exceed the beam width. Beam search "
                        "keeps distinct token sequences, and two can decode to one text (listed once, with the "
                        "best score): then fewer than K lines come, and a note on stderr says how many of the "
                        "beam's hypotheses were merged (--json: nbest_merged); a wider --num-beams may find more")
    p.add_argument("--json", action="store_true",
                   help="one JSON object a line per input: id, source, text, nbest [{text, score}] (K with --nbest, "
                        "else the whole beam; one entry per distinct text), nbest_merged (how many of the beam's "
                        "hypotheses decode to the text of a better one and are not listed), timings (seconds), warnings [...] (why the input may not be signing), "
                        "notice (null, or why the text is not a real translation: a demo-language model) and error "
                        "(null, or why the input was not translated)")
    p.set_defaults(func=run)


def run(args) -> int:
    check_model_arg(args.checkpoint)  # a path that is no model: one line before torch loads (a hub id: below)
    if args.show and len(args.inputs) != 1:
        raise RvlfError("--show draws one video: give a single INPUT")
    if args.show and Path(args.inputs[0]).suffix.lower() in (".npz", ".pose", ".pkl"):
        raise RvlfError(f"{args.inputs[0]}: --show needs a video, frame folder or image input (a keypoint or "
                        "feature file has no frames to draw on)")
    if args.show:
        check_output_file(args.show, "--show", f"{Path(args.inputs[0]).stem or 'out'}.mp4")
    # torch, transformers, NumPy (MediaPipe, cv2, PyAV once inputs are read): only when translating;
    # rvlf.device and rvlf.train.training_data are light but would add modules to every `rvlf` start-up
    from rvlf.data.dataset import check_long_inputs, long_input_note
    from rvlf.device import resolve_device
    from rvlf.inference.api import BeamDecoder, resolve_pretrained
    from rvlf.inference.export import checkpoint_dir
    from rvlf.inference.loading import load_stage, load_stage_config
    from rvlf.inference.overlay import draw_overlay
    from rvlf.inference.pipeline import decode, input_warnings, no_signer, prepare_input
    from rvlf.train.training_data import read as read_training_data

    device = resolve_device(args.device)
    # a run folder: its best; a hub id: its snapshot (as SignTranslator.from_pretrained and rvlf app)
    ckpt_dir = checkpoint_dir(resolve_pretrained(args.checkpoint, revision=args.revision))
    # the inputs are read first (the config says which DINOv2 and how many frames): an unreadable
    # input is reported before the model's weights are loaded
    cfg = load_stage_config(ckpt_dir)
    uses_dino = hasattr(cfg, "fusion") and (cfg.fusion.use_face or cfg.fusion.use_hand)
    dino = None
    if uses_dino:
        dino = args.dino or (str(ckpt_dir / "dinov2") if (ckpt_dir / "dinov2").is_dir() else cfg.data.dino_model)
    policy = check_long_inputs(cfg.data.long_inputs)
    num_beams = args.num_beams or cfg.train.num_beams
    if args.nbest and args.nbest > num_beams:
        raise RvlfError(f"--nbest {args.nbest} needs a beam at least {args.nbest} wide, the beam is {num_beams} "
                        f"(beam search keeps num_beams hypotheses): add --num-beams {args.nbest}")
    ids, note = unique_ids(args.inputs)
    if note:
        print(f"rvlf translate: note: {note}", file=sys.stderr, flush=True)
    # --json: one record per input, in input order (`warnings` collects notes; `error` why it was not translated)
    records = [{"id": name, "source": str(path), "text": None, "nbest": [], "nbest_merged": 0,
                "timings": {}, "warnings": [], "notice": None, "error": None} for path, name in zip(args.inputs, ids)]
    prepared, prepared_records, empty, failed = [], [], [], []
    for path, record in zip(args.inputs, records):
        start = time.perf_counter()
        try:
            # frames data.max_frames drops are never run through MediaPipe or DINOv2
            p = prepare_input(path, dino, device=device, max_frames=cfg.data.max_frames, long_inputs=policy)
        except InputFileError as err:  # this input only: the others are still translated (as rvlf extract)
            record["error"] = str(err)
            if len(args.inputs) == 1:
                if args.json:
                    print(json.dumps(record, ensure_ascii=False), flush=True)
                raise
            print(f"rvlf translate: failed: {err}", file=sys.stderr, flush=True)
            failed.append(err)
            continue
        record["timings"]["prepare_s"] = round(time.perf_counter() - start, 3)  # keypoints, crops, DINOv2
        p.name = record["id"]  # unique among the inputs (`unique_ids`): the first column, --json's id
        record["warnings"].extend(p.notes)  # logged on stderr while preparing it
        problem = no_signer(p)
        if problem:
            print(f"rvlf translate: {problem}", file=sys.stderr, flush=True)
            record["error"] = problem
            empty.append(p)
            continue
        note = long_input_note(p.name, p.input_frames, cfg.data.max_frames, policy)
        if note:
            print(f"rvlf translate: {note}", file=sys.stderr, flush=True)
            record["warnings"].append(note)
        prepared.append(p)
        prepared_records.append(record)
    texts, nbest = [], []
    notice = read_training_data(ckpt_dir, cfg).notice() if prepared else None
    if notice:  # before the translations: a demo model's sentence is not a translation of real signing
        print(f"rvlf translate: notice: {notice}", file=sys.stderr, flush=True)
        for record in records:
            record["notice"] = notice
    if prepared:
        start = time.perf_counter()
        stage, model, cfg = load_stage(ckpt_dir)  # once for all inputs (DINOv2 too: rvlf.inference.pipeline.dino_encoder)
        model.to(device)
        loaded = time.perf_counter()
        decoder = BeamDecoder(stage, with_scores=bool(args.nbest or args.json))  # n-best: the beam's hypotheses
        texts = decode(decoder, prepared, num_beams=num_beams,
                          max_new_tokens=cfg.train.max_new_tokens, max_frames=cfg.data.max_frames, device=device,
                          long_inputs=policy)
        nbest = decoder.nbest or [[] for _ in texts]
        timings = {"load_s": round(loaded - start, 3), "decode_s": round(time.perf_counter() - loaded, 3),
                   "decoded_together": len(prepared)}  # one batch: its load and decode time, shared
        for record in prepared_records:
            record["timings"].update(timings)
    for p, record, text, hyps in zip(prepared, prepared_records, texts, nbest):
        merged = getattr(hyps, "merged", 0)  # beam hypotheses whose text a better one has (BeamDecoder: distinct texts)
        hyps = list(hyps)[:args.nbest or None]
        record["text"] = text
        record["nbest"] = [{"text": h.text, "score": round(h.score, 4)} for h in hyps]
        record["nbest_merged"] = merged
        if args.nbest and len(hyps) < args.nbest:  # fewer lines than asked for: say why, beside its lines
            print(f"rvlf translate: {p.source}: note: {len(hyps)} of the {args.nbest} hypotheses asked for (--nbest "
                  f"{args.nbest}): {merged} of the beam's {num_beams} decode to the text of a better one (listed once, "
                  "with the best score); a wider --num-beams may find more distinct texts", file=sys.stderr,
                  flush=True)
        if args.json:
            pass  # all records are printed below, in input order
        elif args.nbest:
            for rank, h in enumerate(hyps, 1):
                print(f"{p.name}\t{rank}\t{h.score:.4f}\t{one_line(h.text)}", flush=True)
        else:
            print(f"{p.name}\t{one_line(text)}", flush=True)  # one line a file, whatever the model generated
        for warning in input_warnings(p):  # beside its sentence: why this input is not plausibly signing
            print(f"rvlf translate: {p.source}: warning: {warning}", file=sys.stderr, flush=True)
            record["warnings"].append(warning)
        if not text.strip():
            print(f"rvlf translate: {p.source}: the model generated no words for its {len(p.keypoints)} frames "
                  f"({'its text is empty' if args.json else 'the line above is empty'})", file=sys.stderr,
                  flush=True)
            record["warnings"].append(f"the model generated no words for its {len(p.keypoints)} frames")
    if args.json:
        for record in records:
            print(json.dumps(record, ensure_ascii=False), flush=True)
    if args.show and prepared:
        p = prepared[0]
        out = draw_overlay(p.source, p.keypoints, p.boxes, args.show, texts[0], found=p.found, frames=p.frames)
        print(f"rvlf translate: wrote {out}", file=sys.stderr, flush=True)  # stdout: translations only (parsed)
    if failed and not prepared and not empty:
        raise RvlfError(f"none of the {len(args.inputs)} inputs could be read (each is named above)")
    if failed:
        print(f"rvlf translate: {len(failed)} of {len(args.inputs)} inputs could not be read (named above); "
              "the others are translated", file=sys.stderr, flush=True)
    return 1 if empty or failed else 0


def unique_ids(inputs: list[str]) -> tuple[list[str], str | None]:
    """Each input's id (the NAME column, --json's `id`) and a note line when some had to be longer.

    An input's id is its file name without the suffix (`clip` for `clip.mp4`, a frame folder's name).
    Inputs that would share an id get their file name with the suffix (`clip.mp4`, `clip.webm`, `clip.npz`),
    and where those are the same too, their path as given (`a/clip.mp4`, `b/clip.mp4`); one input given
    twice is numbered (`clip.mp4`, `clip.mp4#2`). The note (None when every name was unique) lists the
    longer ids."""
    levels = (lambda p: Path(p).stem or Path(p).resolve().name, lambda p: Path(p).name or str(p), str)
    level = [0] * len(inputs)
    ids = [levels[0](p) for p in inputs]
    while True:  # each round lengthens the ids that are still shared: at most len(levels) rounds
        counts = Counter(ids)
        shared = [i for i, name in enumerate(ids) if counts[name] > 1 and level[i] < len(levels) - 1]
        if not shared:
            break
        for i in shared:
            level[i] += 1
            ids[i] = levels[level[i]](inputs[i])
    seen: Counter = Counter()
    for i, name in enumerate(ids):
        seen[name] += 1
        if seen[name] > 1:
            ids[i] = f"{name}#{seen[name]}"
    longer = [name for name, lv in zip(ids, level) if lv]
    if not longer:
        return ids, None
    return ids, (f"inputs share a name, so these ids (first column, --json id) are longer: {', '.join(longer)}")
