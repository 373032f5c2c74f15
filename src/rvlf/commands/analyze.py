"""`rvlf analyze similarity`: adjacent-frame cosine similarity of body, face and hand features
(paper Sec. 7.2, Fig. 5) as a stacked histogram.

Face and hands use the DINOv2 crop features (`dino [T,3,D]`) when the files hold them, else
keypoint vectors. The body always uses keypoint vectors: extraction crops only the face and the
hands, so there is no full-frame DINOv2 feature. A keypoint vector is a part's (x, y) points,
centred on their mean, over the points confident in both frames (at least 3). A pair of frames
counts only when the part was detected in both (a fallback crop would compare a frame with a
copy of an earlier box).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from rvlf import atomic
from rvlf.commands._common import check_output_file
from rvlf.data.walk import TreeProblem, files_under
from rvlf.errors import RvlfError

# NumPy, rvlf.data.crops/keypoints/features (NumPy) and Matplotlib are imported inside the functions on
# purpose: `rvlf --help` imports every command module and stays quick

GROUPS = ("body", "face", "hands")


def register(sub) -> None:
    p = sub.add_parser("analyze", help="feature analyses (adjacent-frame similarity, paper Figs. 5 and 7)")
    analyses = p.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    s = analyses.add_parser(
        "similarity",
        help="histogram of adjacent-frame cosine similarity for body, face and hands (Fig. 5)",
        description=__doc__.split("\n\n", 1)[1],
    )
    s.add_argument("features_dir", metavar="FEATURES_DIR", help="folder of .npz files written by `rvlf extract`")
    s.add_argument("--out", required=True, help="PNG file to write")
    s.add_argument("--bins", type=int, default=40, help="histogram bins (default: %(default)s)")
    s.set_defaults(func=run)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # NumPy: only when similarities are computed (`rvlf --help` imports this module)
    import numpy as np

    num = (a * b).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return num / np.maximum(den, 1e-12)


def keypoint_similarity(kp: np.ndarray, part: slice, threshold: float = 0.3) -> np.ndarray:
    """Cosine similarity of frames t and t+1 of one part's centred keypoint vectors `[<=T-1]`."""
    # NumPy: only when similarities are computed (`rvlf --help` imports this module)
    import numpy as np

    xy, ok = kp[:, part, :2].astype(np.float64), kp[:, part, 2] > threshold
    both = (ok[:-1] & ok[1:])[..., None]                           # [T-1,n,1]
    count = np.maximum(both.sum(1, keepdims=True), 1)
    a, b = xy[:-1] * both, xy[1:] * both
    a = (a - a.sum(1, keepdims=True) / count) * both
    b = (b - b.sum(1, keepdims=True) / count) * both
    valid = both[..., 0].sum(1) >= 3
    return _cosine(a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1))[valid] if len(a) else np.zeros(0)


def video_similarities(feats: dict) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Adjacent-frame similarities per group (body, face, hands) and the feature each used."""
    # NumPy (also under rvlf.data.crops and .keypoints): only when similarities are computed
    import numpy as np

    from rvlf.data.crops import CROP_PARTS, part_found
    from rvlf.data.keypoints import PARTS

    kp = feats["keypoints"]
    found = part_found(kp)[:, 1:]                                  # face, left hand, right hand
    pair = found[:-1] & found[1:]
    sims: dict[str, list[np.ndarray]] = {g: [] for g in GROUPS}
    sims["body"].append(keypoint_similarity(kp, PARTS["body"]))
    source = {"body": "keypoints"}
    for p, (name, part) in enumerate(CROP_PARTS.items()):
        group = "face" if name == "face" else "hands"
        if "dino" in feats:
            d = feats["dino"][:, p].astype(np.float32)
            sims[group].append(_cosine(d[:-1], d[1:])[pair[:, p]])
            source[group] = "DINOv2"
        else:
            sims[group].append(keypoint_similarity(kp, part))
            source[group] = "keypoints"
    return {g: np.concatenate(v) for g, v in sims.items()}, source


def plot_similarity(sims: dict[str, np.ndarray], source: dict[str, str], title: str, out: Path, bins: int) -> None:
    """A stacked histogram (as Fig. 5) with each group's source, pair count and median; atomic write."""
    # NumPy, Matplotlib: only when the figure is drawn (`rvlf --help` imports this module)
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=120, layout="constrained")
    ax = fig.subplots()
    data = [sims[g] for g in GROUPS]
    labels = [
        f"{g} ({source.get(g, '-')}): {len(sims[g])} pairs, median {np.median(sims[g]):.4f}" if len(sims[g])
        else f"{g}: no frame pairs" for g in GROUPS
    ]
    everything = np.concatenate(data)
    # Spread the bulk of the pairs over the axis: start at the 1st percentile (at most 0.999);
    # lower values are counted in the first bin.
    lo = min(float(np.quantile(everything, 0.01)), 0.999) if len(everything) else 0.0
    edges = np.linspace(lo, 1.0, bins + 1)
    ax.hist([np.clip(v, lo, 1.0) for v in data], bins=edges, stacked=True, label=labels,
            color=["#4C72B0", "#DD8452", "#55A868"], edgecolor="white", linewidth=0.4)
    below = int((everything < lo).sum())
    note = f" ({below} pairs below {lo:.3f} counted in the first bin)" if below else ""
    ax.set_xlabel(f"cosine similarity between adjacent frames{note}", fontsize=11)
    ax.set_ylabel("number of frame pairs", fontsize=11)
    ax.set_title(title, fontsize=12)
    ax.legend(loc="best", fontsize=10, framealpha=0.85)
    ax.grid(axis="y", alpha=0.3)
    atomic.write_file(out, lambda tmp: fig.savefig(tmp, format="png"), "the figure")


def run(args: argparse.Namespace) -> int:
    # NumPy (also under rvlf.data.features): only when the command runs (`rvlf --help` imports this module)
    import numpy as np

    from rvlf.data.features import load_video_features

    root = Path(args.features_dir)
    if not root.is_dir():
        raise RvlfError(f"{root}: not a folder of feature files")
    check_output_file(args.out, "--out", "similarity.png")  # before the features are read
    if args.bins < 1:
        raise RvlfError(f"--bins must be >= 1, got {args.bins}")
    problems: list[TreeProblem] = []  # linked folders are followed; broken links and loops named
    files = sorted(files_under(root, ".npz", problems))
    for p in problems:
        print(f"rvlf analyze: {'note' if p.kind == 'loop' else 'skipped'}: {p}", file=sys.stderr)
    broken = sum(p.kind != "loop" for p in problems)
    if not files:
        raise RvlfError(f"{root}: no .npz feature files (run `rvlf extract` first)"
                        + (f"; {broken} broken link(s) named above" if broken else ""))
    per_group: dict[str, list[np.ndarray]] = {g: [] for g in GROUPS}
    source: dict[str, str] = {}
    bad = 0
    for f in files:
        try:
            sims, src = video_similarities(load_video_features(f))
        except RvlfError as err:
            print(f"rvlf analyze: skipped {err}", file=sys.stderr)
            bad += 1
            continue
        for g in GROUPS:
            per_group[g].append(sims[g])
            if source.get(g, src[g]) != src[g]:
                source[g] = "DINOv2 + keypoints"
            source.setdefault(g, src[g])
    if bad == len(files):
        raise RvlfError(f"{root}: none of the {len(files)} feature files could be read")
    merged = {g: np.concatenate(v) for g, v in per_group.items()}
    n = len(files) - bad
    plot_similarity(merged, source, f"Adjacent-frame similarity ({n} video{'s' * (n != 1)})", Path(args.out), args.bins)
    for g in GROUPS:
        v = merged[g]
        stats = f"median {np.median(v):.4f}, mean {v.mean():.4f}, {len(v)} pairs" if len(v) else "no frame pairs"
        print(f"{g:6s} ({source[g]}): {stats}")
    print(f"wrote {args.out}")
    return 1 if bad or broken else 0
