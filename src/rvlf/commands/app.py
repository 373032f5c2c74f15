"""`rvlf app`: try a trained model in the browser (a local Gradio page)."""

import argparse
import math

from rvlf.commands._common import positive_int
from rvlf.inference.model_paths import check_model_arg


def positive_float(text: str) -> float:
    """argparse type: a number > 0 (the page's limits), refused in one usage line otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def register(sub) -> None:
    p = sub.add_parser("app", help="try a model in the browser: upload a video, see keypoints and the translation",
                       description="Serves a local page (Gradio; pip install 'rvlf[app]') on which you upload a "
                                   "video, a zip of frame images or a keypoint file (.pose/.pkl/.npz) and see the "
                                   "video with keypoints and face/hand crop boxes, the translation, the beam's "
                                   "n-best with scores and the time each part took. Runs offline: no analytics, "
                                   "no web fonts or CDN, no share link; listens on 127.0.0.1 only by default.")
    p.add_argument("--checkpoint", required=True,
                   help="exported model folder, checkpoint of any stage (RUN/best), run folder or hub id")
    p.add_argument("--port", type=int, default=None, help="port (default: the first free one from 7860)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only; 0.0.0.0 opens it to "
                        "your network)")
    p.add_argument("--num-beams", type=positive_int, default=None,
                   help="beam width the page starts with (default: the checkpoint's train.num_beams, 5)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--max-upload-mb", type=positive_float, default=200.0,
                   help="largest upload the page accepts, in MB (default 200)")
    p.add_argument("--max-seconds", type=positive_float, default=60.0,
                   help="longest video the page accepts, in seconds (default 60; frame zips count 25 frames/s)")
    p.set_defaults(func=run)


def run(args) -> int:
    check_model_arg(args.checkpoint)  # a path that is no model: one line before torch and Gradio load
    # rvlf.inference.app (NumPy; Gradio, the optional extra 'app', and torch once it serves): only for
    # `rvlf app` itself, `rvlf --help` imports this module
    from rvlf.inference.app import serve

    serve(args.checkpoint, host=args.host, port=args.port, device=args.device, num_beams=args.num_beams,
          open_browser=args.open, max_upload_mb=args.max_upload_mb, max_seconds=args.max_seconds)
    return 0
