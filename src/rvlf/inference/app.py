"""`rvlf app`: try a trained model in the browser (a local Gradio page; `pip install 'rvlf[app]'`).

Upload a video, a zip of frame images or a keypoint / feature file, or record a clip with the
webcam; the page shows the video with the MediaPipe keypoints and the face/hand crop boxes
(Sec. 6.2; reused boxes dashed grey, `rvlf.inference.overlay`) drawn over it (keypoint files: the skeleton
on a black canvas), the translation, the beam's n-best with scores
(`SignTranslator.translate(..., return_scores=True)`), and how long each part took (decoding,
MediaPipe, crops, DINOv2, the LM's beam search, drawing). A file it cannot read gets one clear
line on the page. A model trained on the rvlf synthetic demo language says so at the top of the
page and beside every translation; an input that is not plausibly signing (a still image or a
few frames, no hands) gets a warning beside its translation.

Bounded work: an upload is refused above `max_upload_mb` (Gradio's `max_file_size`) or
`max_seconds` of video (from the header, else counted while decoding, stopping at the limit),
and only the frames `data.max_frames` keeps are run through MediaPipe and DINOv2.

Offline by construction: Gradio's analytics and version check off (`GRADIO_ANALYTICS_ENABLED`),
system fonts only (no web-font or CDN request), no share link, no server-side rendering, bound
to 127.0.0.1 unless `--host` says otherwise. `process` does the work without Gradio (tests).
"""

from __future__ import annotations

import logging
import lzma
import os
import shutil
import tempfile
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from rvlf.data.crops import part_found
from rvlf.data.video import FRAME_FOLDER_FPS, frame_files, is_image, write_browser_video
from rvlf.errors import InputFileError, RvlfError
from rvlf.inference.api import SignTranslator
from rvlf.inference.overlay import draw_overlay, draw_skeleton

log = logging.getLogger("rvlf.inference.app")

TITLE = "rvlf: sign language translation"
KEYPOINT_SUFFIXES = (".pose", ".pkl", ".npz")
MAX_ZIP_BYTES = 4 * 2**30  # uncompressed frames a zip may hold (a guard against zip bombs)
PART_LABELS = ("body", "face", "left hand", "right hand")
STAGES = {"pretrain": "stage 1 (VLP decoder)", "sft": "SLT-SFT", "grpo": "SLT-GRPO"}
MAX_UPLOAD_MB = 200  # Gradio refuses larger uploads (launch's max_file_size)
MAX_SECONDS = 60.0  # longer videos (or frame zips, at 25 frames/s) are refused before any decoding work


def offline_environment() -> None:
    """Switch off everything in Gradio and the hub clients that would call out (before importing gradio)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("GRADIO_SSR_MODE", "False")


@dataclass
class AppResult:
    """What one upload gives the page."""

    translation: str = ""
    nbest: list[list] = field(default_factory=list)  # rows [rank, text, score]
    nbest_merged: int = 0  # beam hypotheses not in `nbest`: their text is that of a better one (`NBest.merged`)
    timings: list[tuple[str, float]] = field(default_factory=list)  # (part, seconds)
    video: str | None = None  # H.264 mp4 (or WebM) with keypoints and boxes drawn
    status: str = ""  # Markdown: what was read, or the error
    error: bool = False
    notice: str | None = None  # the model's training-data notice (demo language / unknown), or None
    warnings: list[str] = field(default_factory=list)  # why the input is not plausibly signing

    def warnings_markdown(self) -> str:
        """The notice and warnings shown beside the translation (Markdown; empty when there are none)."""
        lines = [f"**Not a real translation**: {self.notice}." if self.notice else ""]
        lines += [f"**Warning**: {w}." for w in self.warnings]
        return "\n\n".join(line for line in lines if line)


# ---------------------------------------------------------------- inputs


def unpack_frames(archive: Path, into: Path) -> Path:
    """A zip of frame images -> the folder of its frames.

    The frames are the images of the one folder inside the zip that holds the most of them (the
    first such folder in the zip on a tie; a clip's frames in `clip/part_b/` are read from there,
    its other folders ignored); hidden files (`._*`, `.DS_Store`) and `__MACOSX/` are skipped;
    names are flattened, so nothing is written outside `into`. Raises `InputFileError` naming the
    zip for one that is unreadable, holds no frames or unpacks to more than `MAX_ZIP_BYTES`, and
    naming the member for one that cannot be read (bad CRC-32, corrupt or cut-short compressed
    data, encrypted, an unsupported compression method)."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise InputFileError(archive, f"not a readable zip file ({err})") from None
    with zf:
        groups: dict[str, list[zipfile.ZipInfo]] = {}
        for info in zf.infolist():
            parts = PurePosixPath(info.filename).parts
            if info.is_dir() or not parts or any(p.startswith(".") or p == "__MACOSX" for p in parts):
                continue
            if is_image(Path(parts[-1])):
                groups.setdefault(str(PurePosixPath(*parts[:-1])), []).append(info)
        if not groups:
            raise InputFileError(archive, "the zip holds no frame images (.jpg, .png, ...)")
        members = max(groups.values(), key=len)
        if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
            raise InputFileError(archive, f"the frames are larger than {MAX_ZIP_BYTES >> 30} GiB unpacked")
        folder = into / (Path(archive).stem or "frames")
        folder.mkdir(parents=True, exist_ok=True)
        for m in members:
            try:
                data = zf.read(m)  # one frame image; the total is bounded by MAX_ZIP_BYTES above
            except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, RuntimeError, NotImplementedError,
                    ValueError, OSError) as err:  # what zipfile raises for a damaged or unsupported member
                reason = str(err) or type(err).__name__
                if isinstance(err, zlib.error):
                    reason = f"corrupt compressed data ({reason})"
                elif isinstance(err, EOFError):
                    reason = "cut short"
                raise InputFileError(archive, f"member {m.filename!r} cannot be read: {reason}; the zip is damaged "
                                              "or unsupported (re-create or re-download it)") from None
            (folder / PurePosixPath(m.filename).name).write_bytes(data)
    return folder


# ---------------------------------------------------------------- drawing


def skeleton_frames(keypoints: np.ndarray, size: int = 480):
    """The keypoints alone (bones and outlined points, `rvlf.inference.overlay.draw_skeleton`), fitted into a
    black `size` x `size` canvas, one RGB frame per input frame."""
    kp = np.asarray(keypoints, dtype=np.float32)
    ok = kp[..., 2] > 0.3
    if ok.any():
        lo, hi = kp[ok][:, :2].min(0), kp[ok][:, :2].max(0)
    else:
        lo, hi = np.zeros(2, np.float32), np.ones(2, np.float32)
    scale = 0.9 * size / max(float((hi - lo).max()), 1e-6)
    offset = (size - scale * (hi - lo)) / 2 - scale * lo
    for t in range(len(kp)):
        yield draw_skeleton(np.zeros((size, size, 3), dtype=np.uint8), kp[t], offset=offset, zoom=scale)


def check_length(source: Path, max_seconds: float, shown: str | None = None) -> None:
    """Refuse (`InputFileError`) a video or frame folder longer than `max_seconds`: from the video's
    header when it states a duration or frame count, else by decoding (demuxing) at most up to the
    limit; a frame folder counts at 25 frames/s (`FRAME_FOLDER_FPS`)."""
    source = Path(source)
    too_long = f"longer than this page's limit of {max_seconds:g} s"
    if source.is_dir():
        n = len(frame_files(source))
        if n > max_seconds * FRAME_FOLDER_FPS:
            raise InputFileError(shown or source, f"{n} frames (at {FRAME_FOLDER_FPS:g} frames/s) is {too_long}")
        return
    if not source.is_file() or is_image(source) or source.suffix.lower() in KEYPOINT_SUFFIXES:
        return
    try:
        import av  # PyAV: only for a video upload (its duration); keypoint files and images need none

        with av.open(str(source)) as container:
            if not container.streams.video:
                return  # not a video: prepare says so
            stream = container.streams.video[0]
            rate = float(stream.average_rate or 0) or 25.0
            seconds = None
            if stream.duration and stream.time_base:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration:
                seconds = container.duration / 1e6
            elif stream.frames:
                seconds = stream.frames / rate
            if seconds is None:  # e.g. a browser's webcam recording (WebM without a duration): count
                seconds, limit = 0.0, max_seconds * rate
                for n, _ in enumerate(container.demux(stream), start=1):
                    if n > limit:
                        seconds = n / rate
                        break
    except Exception:  # noqa: BLE001 - an unreadable file: `prepare` reports it in its own words
        return
    if seconds > max_seconds:
        raise InputFileError(shown or source, f"{seconds:.0f} s of video is {too_long}")


# ---------------------------------------------------------------- one upload


def _seen_line(keypoints: np.ndarray) -> str:
    found = part_found(keypoints).mean(0) * 100
    return ", ".join(f"{label} {share:.0f}%" for label, share in zip(PART_LABELS, found))


def prune_jobs(workdir: Path, max_age_s: float = 3600.0) -> None:
    """Remove earlier uploads' work folders (unpacked frames, overlay videos) older than `max_age_s`."""
    now = time.time()
    for job in workdir.glob("job-*"):
        try:
            if now - job.stat().st_mtime > max_age_s:
                shutil.rmtree(job, ignore_errors=True)
        except OSError:
            pass


TIMING_LABELS = (("decode", "decoding the video"), ("keypoints", "keypoints (MediaPipe Holistic)"),
                 ("crops", "face/hand crops"), ("dinov2", "DINOv2 features"))


def process(translator, upload: str | Path | None, num_beams: int = 5, workdir: str | Path | None = None,
            *, max_seconds: float = MAX_SECONDS, shown: str | None = None) -> AppResult:
    """Translate one uploaded file (or webcam recording) for the page: check its length
    (`check_length`), prepare it (`SignTranslator.prepare`: only the frames `data.max_frames` keeps
    reach MediaPipe and DINOv2), decode the beam's n-best, draw the overlay video into `workdir`;
    time each part. Errors a user can cause (`RvlfError`) become the result's status line, with the
    upload's own file name (`shown`, default the file's name)."""
    if upload is None:
        return AppResult(status="Upload a video, a zip of frames, or a keypoint file (.pose, .pkl, .npz), "
                                "or record a clip with the webcam.")
    upload = Path(upload)
    shown = shown or upload.name
    workdir = Path(workdir or tempfile.mkdtemp(prefix="rvlf-app-"))
    workdir.mkdir(parents=True, exist_ok=True)
    prune_jobs(workdir)
    job = Path(tempfile.mkdtemp(prefix="job-", dir=workdir))
    res = AppResult()
    try:
        t0 = time.perf_counter()
        source = upload
        if upload.suffix.lower() == ".zip":
            source = unpack_frames(upload, job)
            res.timings.append(("unpacking the zip", time.perf_counter() - t0))
        keypoint_file = upload.suffix.lower() in KEYPOINT_SUFFIXES
        if not keypoint_file:
            t = time.perf_counter()
            check_length(source, max_seconds, shown)
            res.timings.append(("checking the length", time.perf_counter() - t))
        t = time.perf_counter()
        prepared = translator.prepare(source)
        if keypoint_file:
            res.timings.append(("reading the keypoint file", time.perf_counter() - t))
        else:
            res.timings += [(label, prepared.timings.get(key, 0.0)) for key, label in TIMING_LABELS
                            if key in prepared.timings]
        res.notice = translator.notice

        # torch (via rvlf.data.dataset, rvlf.inference.pipeline), loaded with the model: not at import,
        # so that `rvlf app` without Gradio says so before torch loads
        from rvlf.data.dataset import long_input_note
        from rvlf.inference.pipeline import no_signer

        problem = no_signer(prepared)
        if problem:
            res.video = str(_draw(prepared, source, keypoint_file, "", job))
            res.status = (f"**No signer found in `{shown}`**: the body is detected in none of its "
                          f"{len(prepared.keypoints)} frames, so there is nothing to translate.")
            res.error = True
            return res
        t = time.perf_counter()
        nbest = translator.translate_prepared([prepared], num_beams=int(num_beams), return_scores=True)[0]
        res.timings.append((f"translation (beam search, width {int(num_beams)})", time.perf_counter() - t))
        res.translation = nbest[0].text
        res.warnings = list(getattr(nbest, "warnings", ()))
        res.nbest = [[i + 1, h.text, round(h.score, 4)] for i, h in enumerate(nbest)]
        res.nbest_merged = nbest.merged

        t = time.perf_counter()
        res.video = str(_draw(prepared, source, keypoint_file, res.translation, job))
        res.timings.append(("drawing keypoints and crop boxes", time.perf_counter() - t))
        res.timings.append(("total", time.perf_counter() - t0))
        n = prepared.input_frames
        note = long_input_note(shown, n, translator.config.data.max_frames, translator.config.data.long_inputs)
        res.status = (f"**{shown}**: {n} frames; found in: {_seen_line(prepared.keypoints)} of the "
                      f"{'frames' if n == len(prepared.keypoints) else f'{len(prepared.keypoints)} frames kept'}. "
                      f"Model: {STAGES.get(translator.stage, translator.stage)}, output {translator.language}."
                      + ("" if res.translation else " The model's best hypothesis is an empty text.")
                      + (f" {note}." if note else "")
                      + (f" The n-best lists {len(nbest)} of the beam's {int(num_beams)} hypotheses: "
                         f"{res.nbest_merged} decode to the text of a better one (listed once, with the best score)."
                         if res.nbest_merged else "")
                      + "".join(f" Warning: {w}." for w in res.warnings)
                      + (" Not a real translation: the model was trained on the rvlf synthetic demo language."
                         if translator.training_data.synthetic else ""))
    except RvlfError as err:
        message = str(err).replace(str(source), shown).replace(str(upload), shown)
        if message.startswith(f"{shown}: "):
            message = message[len(shown) + 2:]
        res = AppResult(status=f"**Cannot read `{shown}`**: {message}", error=True)
    except Exception as err:  # noqa: BLE001 - a bug must not take the page down; the terminal has the traceback
        log.exception("rvlf app: %s failed", shown)
        res = AppResult(status=f"**Internal error on `{shown}`**: {type(err).__name__}: {err} "
                               "(the terminal running `rvlf app` shows the traceback)", error=True)
    return res


def _draw(prepared, source: Path, keypoint_file: bool, text: str, job: Path) -> Path:
    if keypoint_file or prepared.boxes is None:
        return write_browser_video(skeleton_frames(prepared.keypoints), 25.0, job / "skeleton")
    return draw_overlay(source, prepared.keypoints, prepared.boxes, job / "overlay.mp4", text, found=prepared.found,
                        frames=prepared.frames)


# ---------------------------------------------------------------- the page


def build_app(translator, *, num_beams: int = 5, workdir: str | Path | None = None,
              max_upload_mb: float = MAX_UPLOAD_MB, max_seconds: float = MAX_SECONDS):
    """The Gradio page around `translator` (a `SignTranslator`); returns (blocks, theme, css).

    Two inputs: a file upload and a webcam recording (`gr.Video(sources=["webcam"])`, kept as the
    browser recorded it: WebM, not mirrored, no audio track requested), each translated as soon
    as it arrives. The page states the limits `max_upload_mb` (enforced by `serve` through
    `launch(max_file_size=...)`) and `max_seconds` (enforced by `process`)."""
    offline_environment()
    # gradio (optional extra 'app'), after offline_environment(): it reads those switches when imported
    import gradio as gr
    from gradio.components.image_editor import WebcamOptions

    def recorded_file(payload):
        """The webcam recording handed over as it is: Gradio's own `Video.preprocess` runs the ffmpeg
        program to drop the audio track or to mirror, and rvlf reads the recording with PyAV instead (no
        ffmpeg program needed). Set on the instance: a `gr.Video` subclass would make Gradio write a
        `.pyi` stub beside this module at run time."""
        return None if payload is None or not payload.path else str(payload.path)

    workdir = Path(workdir or tempfile.mkdtemp(prefix="rvlf-app-"))
    lock = threading.Lock()  # one model, one decode at a time

    def run(upload, beams, shown=None):
        with lock:
            res = process(translator, upload, int(beams), workdir, max_seconds=max_seconds, shown=shown)
        timings = "\n".join(["| part | seconds |", "| --- | ---: |"] +
                            [f"| {part} | {sec:.2f} |" for part, sec in res.timings])
        return (res.video, res.translation, res.warnings_markdown(), res.nbest or None,
                timings if res.timings else "", res.status)

    def run_webcam(recording, beams):
        if recording is None:  # the recording was cleared: leave the results as they are
            return (gr.skip(),) * 6
        return run(recording, beams, shown="webcam recording")

    stage = STAGES.get(translator.stage, translator.stage)
    trained = translator.training_data.describe()
    info = (f"Model: **{stage}**, trained on **{trained}**, output language **{translator.language}**, from "
            f"`{translator.directory}`, on {translator.device}. Nothing leaves this computer.")
    notice = ""
    if translator.notice:
        notice = f"**{'Demo model' if translator.training_data.synthetic else 'Unknown training data'}**: " \
                 f"{translator.notice}."
    limits = (f"Up to {max_upload_mb:g} MB and {max_seconds:g} s of video. The model reads "
              f"{'the first' if translator.config.data.long_inputs == 'truncate' else 'an even spread of'} "
              f"{translator.config.data.max_frames} frames of a longer input (`data.max_frames`); only those are "
              f"run through MediaPipe{' and DINOv2' if translator.dino_model else ''}.")
    theme = gr.themes.Default(font=["system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
                              font_mono=["ui-monospace", "Consolas", "monospace"])
    css = ("#rvlf-translation textarea {font-size: 1.4em;}\n"
           "#rvlf-notice, #rvlf-warnings {border: 2px solid #d97706; background: #fef3c7; color: #451a03; "
           "border-radius: 6px; padding: 0.4em 0.8em;}\n"
           "#rvlf-notice p, #rvlf-warnings p {color: #451a03;}\n"
           "#rvlf-warnings:empty, #rvlf-warnings.hide-container:not(:has(p)) {display: none;}")
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as blocks:
        gr.Markdown(f"# {TITLE}\n{info}", latex_delimiters=[])
        if notice:
            gr.Markdown(notice, elem_id="rvlf-notice", latex_delimiters=[])
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Video, zip of frame images, or keypoint file (.pose, .pkl, .npz)",
                                 file_count="single", type="filepath", elem_id="rvlf-upload")
                webcam = gr.Video(label="Or sign into the webcam: record, stop, and it is translated",
                                  sources=["webcam"], format=None, include_audio=False,
                                  webcam_options=WebcamOptions(mirror=False), elem_id="rvlf-webcam", height=240)
                webcam.preprocess = recorded_file
                gr.Markdown(limits, elem_id="rvlf-limits", latex_delimiters=[])
                beams = gr.Slider(1, 10, value=num_beams, step=1, label="Beam width", elem_id="rvlf-beams")
                button = gr.Button("Translate", variant="primary", elem_id="rvlf-run")
                status = gr.Markdown("", elem_id="rvlf-status", latex_delimiters=[])
            with gr.Column(scale=2):
                video = gr.Video(label="Keypoints and crop boxes (face green, left hand blue, right hand orange; "
                                       "dashed grey: a box reused from an earlier frame)",
                                 elem_id="rvlf-video", interactive=False, loop=True, autoplay=False, height=420)
                translation = gr.Textbox(label="Translation", elem_id="rvlf-translation", interactive=False,
                                         lines=2)
                warnings = gr.Markdown("", elem_id="rvlf-warnings", latex_delimiters=[])
                nbest = gr.Dataframe(headers=["#", "hypothesis", "score (mean log-prob per token)"],
                                     label="Beam n-best", elem_id="rvlf-nbest", interactive=False, wrap=True)
                timings = gr.Markdown("", elem_id="rvlf-timings", latex_delimiters=[])
        outputs = [video, translation, warnings, nbest, timings, status]
        upload.upload(run, [upload, beams], outputs)
        button.click(run, [upload, beams], outputs)
        webcam.stop_recording(run_webcam, [webcam, beams], outputs)
    return blocks, theme, css


def serve(checkpoint: str, *, host: str = "127.0.0.1", port: int | None = None, device: str | None = None,
          num_beams: int | None = None, open_browser: bool = False, max_upload_mb: float = MAX_UPLOAD_MB,
          max_seconds: float = MAX_SECONDS) -> None:
    """Load `checkpoint` (any `SignTranslator.from_pretrained` source) and serve the page until
    interrupted (Ctrl+C: returns after `rvlf app: stopped`); uploads above `max_upload_mb` are refused by
    Gradio (`max_file_size`), videos above `max_seconds` by `process`. Prints rvlf's own lines only
    (`rvlf app: serving on URL`; Gradio launches quiet). Raises `RvlfError` for Gradio not installed
    and for a port or host it cannot listen on (one line naming --port / --host)."""
    offline_environment()
    try:  # Gradio is the optional extra 'app': checked before the model (torch, transformers) loads
        import gradio  # noqa: F401
    except ImportError:
        raise RvlfError("the app needs Gradio: pip install 'rvlf[app]'") from None

    translator = SignTranslator.from_pretrained(checkpoint, device=device)
    workdir = Path(tempfile.mkdtemp(prefix="rvlf-app-"))
    blocks, theme, css = build_app(translator, num_beams=num_beams or translator.config.train.num_beams,
                                   workdir=workdir, max_upload_mb=max_upload_mb, max_seconds=max_seconds)
    print(f"rvlf app: {translator!r}", flush=True)
    try:
        try:  # quiet: Gradio prints neither its URL line nor its share-link hint (rvlf has no share link)
            blocks.launch(server_name=host, server_port=port, share=False, inbrowser=open_browser, theme=theme,
                          css=css, ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False,
                          show_error=False, allowed_paths=[str(workdir)], footer_links=["settings"], quiet=True,
                          prevent_thread_lock=True, max_file_size=f"{max_upload_mb:g}mb")
        except OSError as err:  # Gradio's text names its own `launch()` arguments: said in rvlf's options
            problem = str(err)
            if problem.startswith("Cannot find empty port"):
                problem = (f"port {port} is in use, or {host} is not an address of this computer (--port, --host)"
                           if port else f"no free port from 7860 to 7959 on {host} (--port picks one)")
            raise RvlfError(f"cannot serve on {host}{f':{port}' if port else ''}: {problem}") from None
        print(f"rvlf app: serving on {blocks.local_url} (Ctrl+C stops it)", flush=True)
        try:  # Gradio's own wait (`block_thread`) prints its own line on Ctrl+C
            while blocks.is_running:
                time.sleep(0.2)
        except KeyboardInterrupt:
            print("rvlf app: stopped", flush=True)
        blocks.close(verbose=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
