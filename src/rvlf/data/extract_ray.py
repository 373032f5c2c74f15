"""`rvlf extract --engine ray`: the extraction of `rvlf.data.extract` spread over a Ray cluster.

The same per-video work, scheduled by Ray (https://docs.ray.io/) instead of a local process pool:

- decoding + MediaPipe Holistic + crops (`rvlf.data.extract.prepare`) are Ray tasks of one CPU each,
  run wherever the cluster has a free CPU;
- DINOv2 runs in Ray actors that load the model once and take one GPU each when the cluster has GPUs
  (one actor per GPU; without GPUs one actor on one CPU); each actor encodes the crops of a
  video and writes its `OUT/<name>.npz` (atomically, as the local engine does);
- a task's crops go from the task's node to an actor through Ray's object store, never through the
  driver: videos stream through, a bounded number at a time (`in_flight`);
- a video whose output is already there (`rvlf.data.extract.already_extracted`) is skipped, so a
  rerun after a crash or a lost node resumes; a failed video is one line and the others carry on.

Keypoints are the local engine's to the bit (the same `prepare`); DINOv2 features are the same model
on the same crops (float rounding aside, e.g. float16 on a GPU). `--out` must be a folder that every
node can write (a shared file system), as each actor writes the files of the videos it encodes.
"""

from __future__ import annotations

from collections.abc import Callable

from tqdm.auto import tqdm

from rvlf.data.dino_id import fingerprint
from rvlf.data.extract import (
    Job,
    Summary,
    already_extracted,
    encode_crops,
    init_worker,
    prepare_or_error,
)
from rvlf.data.features import DinoEncoder, save_video_features
from rvlf.errors import RvlfError


def require_ray():
    """`import ray`, or one line saying how to install it."""
    try:
        import ray  # Ray (optional extra 'ray'): only for `--engine ray`; missing, it is this one line
    except ImportError:
        raise RvlfError("--engine ray needs Ray: pip install 'rvlf[ray]'") from None
    return ray


def _prepare_task(job: Job, with_crops: bool, margin: float, allow_empty: bool):
    """A Ray task: decode, MediaPipe, crops of one video (a `Prepared`, or its error line)."""
    init_worker()
    return prepare_or_error(job, with_crops, margin, allow_empty)


def _write(job: Job, prepared, encoder=None, dino_meta: dict | None = None) -> dict | str:
    """Encode (with `encoder`) and write one video; its meta, or the error line."""
    if isinstance(prepared, str):
        return prepared
    try:
        meta, dino = prepared.meta, None
        if encoder is not None:
            dino = encode_crops(encoder, prepared.crops, prepared.found)
            meta |= dino_meta or {}
        save_video_features(job.out, prepared.keypoints, dino, meta)
    except (RvlfError, OSError) as err:
        return str(err)
    return {"meta": meta, "notes": prepared.notes}


def _write_task(job: Job, prepared) -> dict | str:
    """A Ray task: write one video's keypoint file (`--no-features`)."""
    return _write(job, prepared)


class DinoWorker:
    """A Ray actor: one DINOv2 model (on the GPU Ray gave it, else the CPU) that encodes and writes."""

    def __init__(self, model: str, batch_size: int):
        # Ray and torch: in the actor's own process, which picks the DINOv2 device (this module imports neither)
        import ray
        import torch

        device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
        if device == "cpu":
            torch.set_num_threads(1)
        dtype = torch.float16 if device == "cuda" else torch.float32
        self.encoder = DinoEncoder(model, device=device, batch_size=batch_size, dtype=dtype)
        self.dino_meta = {"dino_model": self.encoder.name, "dino_fingerprint": fingerprint(self.encoder.name),
                          "dino_dim": self.encoder.dim, "dino_token": "cls"}

    def write(self, job: Job, prepared) -> dict | str:
        return _write(job, prepared, self.encoder, self.dino_meta)


def connect(address: str | None = None) -> None:
    """Join the Ray cluster at `address` (`ray start --head` prints it; `auto`: the one this machine
    belongs to), or start a local one when there is none (`address` None and no `RAY_ADDRESS`)."""
    ray = require_ray()
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except ConnectionError as err:
        raise RvlfError(f"--address {address}: no Ray cluster there ({err})") from None


def extract_ray(
    jobs: list[Job],
    dino: str | None,
    *,
    batch_size: int = 32,
    overwrite: bool = False,
    margin: float = 0.25,
    allow_empty: bool = False,
    address: str | None = None,
    on_failure: Callable[[str], None] | None = None,
    progress: bool | None = None,
    in_flight: int | None = None,
) -> Summary:
    """`rvlf.data.extract.extract` on Ray: the same files, the same `Summary`.

    `dino`: DINOv2 hub id or folder (None: keypoints only). `in_flight`: videos decoded or encoded at a
    time (default: twice the cluster's CPUs), which bounds the crops held in the object store
    (a 300-frame video's crops are 300 x 3 x 224 x 224 x 3 bytes = 135 MB)."""
    ray = require_ray()
    connect(address)
    summary = Summary()
    todo = []
    report = on_failure or print
    for job in jobs:
        try:
            if not overwrite and already_extracted(job):
                summary.skipped += 1
                continue
        except RvlfError as err:
            summary.failed.append((str(job.source), str(err)))
            report(f"failed: {err}")
            continue
        todo.append(job)
    if not todo:
        return summary
    resources = ray.cluster_resources()
    cpus, gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
    in_flight = in_flight or max(2, 2 * cpus)
    prepare = ray.remote(num_cpus=1)(_prepare_task)
    actors = []
    if dino is not None:
        worker = ray.remote(num_gpus=1, num_cpus=0)(DinoWorker) if gpus else ray.remote(num_cpus=1)(DinoWorker)
        actors = [worker.remote(str(dino), batch_size) for _ in range(max(1, gpus))]
    write = ray.remote(num_cpus=1)(_write_task)
    bar = tqdm(total=len(todo), unit="video", disable=None if progress is None else not progress, dynamic_ncols=True)
    pending: dict = {}
    queue = iter(enumerate(todo))

    def submit() -> bool:
        item = next(queue, None)
        if item is None:
            return False
        i, job = item
        prepared = prepare.remote(job, bool(actors), margin, allow_empty)
        # the ObjectRef goes to the writer as it is: Ray hands it the crops where they are
        ref = actors[i % len(actors)].write.remote(job, prepared) if actors else write.remote(job, prepared)
        pending[ref] = job
        return True

    try:
        while len(pending) < in_flight and submit():
            pass
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(done[0])
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayError as err:  # a lost node or a crashed worker: that video fails
                result = f"{job.source}: Ray task failed ({type(err).__name__}: {str(err).splitlines()[0]})"
            if isinstance(result, str):
                summary.failed.append((str(job.source), result))
                report(f"failed: {result}")
            else:
                for note in result["notes"]:
                    report(f"note: {note}")
                summary.add_done(job.source, result["meta"])
            bar.update(1)
            submit()
    finally:
        bar.close()
        for actor in actors:
            ray.kill(actor)
    return summary

