"""Which DINOv2 a feature file was extracted with, and whether two DINOv2s are the same model.

Face/hand features only mean something to the DINOv2 that made them: a checkpoint trained on
features of model A but run (`rvlf translate VIDEO`) with model B of the same width translates
garbage without any error. Every feature file records `meta.dino_model` (the name or path given
to `rvlf extract --dino`) and, since this module, `meta.dino_fingerprint`.

Rules, kept simple enough to explain in one line each:

- a name is compared after `normalise`: a local folder by its resolved absolute path, a hub id as
  it is;
- `fingerprint` of a model whose `model.safetensors` can be found without the network (a local
  folder, or a hub id in the Hugging Face cache) is `SHAPES:LAYOUT:CONTENT`: SHAPES hashes the
  sorted tensor names and shapes, LAYOUT also their dtypes, CONTENT also every tensor's bytes. It
  does not depend on the file's byte order or metadata, so a copy (`cp -r`, the checkpoint's
  `dinov2/`, a re-save) has the fingerprint of its original;
- `same_model(a, b)`: "same" when the normalised names or the fingerprints are equal; "differ"
  when the config.json architecture fields differ, the tensors' names or shapes differ (e.g.
  another image size: other position embeddings), or the same tensors (dtypes too) hold other
  values; else "unknown" (e.g. a hub id that is not cached, or an fp16 copy of an fp32 model).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

# config.json fields that fix a DINOv2's architecture (compared where both configs have them)
ARCH_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
             "mlp_ratio", "patch_size", "image_size", "num_channels", "use_swiglu_ffn", "num_register_tokens",
             "qkv_bias")
WEIGHTS = "model.safetensors"


def normalise(name: str | os.PathLike | None) -> str | None:
    """A local folder (existing) -> its resolved absolute path; anything else (a hub id) as it is."""
    if name is None:
        return None
    text = os.fspath(name)
    local = Path(text).expanduser()
    if local.is_dir():
        return str(local.resolve())
    return text


def _model_file(name: str, filename: str) -> Path | None:
    """`filename` of a local model folder, or of a hub id from the Hugging Face cache (never downloads)."""
    local = Path(name).expanduser()
    if local.is_dir():
        path = local / filename
        return path if path.is_file() else None
    try:
        # huggingface_hub: only for a hub id (`rvlf data check` of a local folder loads none of it)
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, filename)
    except Exception:  # noqa: BLE001 - not a valid repo id, no cache: nothing to compare
        return None
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


@functools.lru_cache(maxsize=16)
def _safetensors_digest(path: str, size: int, mtime_ns: int) -> str | None:
    """`SHAPES:LAYOUT:CONTENT` (16 hex digits each) of one safetensors file (read with `safetensors`); None
    if it is not one."""
    import torch  # deferred on purpose: `rvlf data check` compares model names without loading torch
    from safetensors import SafetensorError, safe_open

    shapes, layout, content = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    try:
        with safe_open(path, framework="pt") as f:
            for key in sorted(f.keys()):
                tensor = f.get_tensor(key)
                shapes.update(f"{key}|{list(tensor.shape)}\n".encode())
                spec = f"{key}|{tensor.dtype}|{list(tensor.shape)}\n".encode()
                layout.update(spec)
                content.update(spec)
                content.update(tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    except (OSError, ValueError, SafetensorError):
        return None
    return f"{shapes.hexdigest()[:16]}:{layout.hexdigest()[:16]}:{content.hexdigest()[:16]}"


def fingerprint(name: str | os.PathLike | None) -> str | None:
    """`SHAPES:LAYOUT:CONTENT` of the model's `model.safetensors` (see the module docstring), or None when
    it cannot be found offline or is not a safetensors file. Reads the whole file once per process
    (about a second for dinov2-base)."""
    if name is None:
        return None
    path = _model_file(os.fspath(name), WEIGHTS)
    if path is None:
        return None
    path = path.resolve()
    st = path.stat()
    return _safetensors_digest(str(path), st.st_size, st.st_mtime_ns)


def architecture(name: str | os.PathLike | None) -> dict | None:
    """The `ARCH_KEYS` of the model's config.json (local folder or hub cache), or None."""
    if name is None:
        return None
    path = _model_file(os.fspath(name), "config.json")
    if path is None:
        return None
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {k: cfg[k] for k in ARCH_KEYS if k in cfg} if isinstance(cfg, dict) else None


def same_model(a: str | None, b: str | None, *, fingerprint_a: str | None = None,
               fingerprint_b: str | None = None) -> tuple[str, str]:
    """("same" | "differ" | "unknown", why) for two DINOv2 names (hub ids or folders).

    `fingerprint_a/_b`: fingerprints already known (e.g. recorded in a feature file's meta);
    otherwise computed from the names where the weights can be found offline."""
    if a is None or b is None:
        return "unknown", "a model is not named"
    if normalise(a) == normalise(b):
        return "same", "the same name"
    fa = fingerprint_a or fingerprint(a)
    fb = fingerprint_b or fingerprint(b)
    if fa and fb and fa == fb:
        return "same", "the same weights"
    arch_a, arch_b = architecture(a), architecture(b)
    if arch_a and arch_b:
        diff = sorted(k for k in set(arch_a) & set(arch_b) if arch_a[k] != arch_b[k])
        if diff:
            return "differ", "other architectures (" + ", ".join(f"{k} {arch_a[k]} vs {arch_b[k]}" for k in diff) + ")"
    if fa and fb:
        pa, pb = fa.split(":"), fb.split(":")
        if len(pa) == len(pb) == 3 and pa[0] != pb[0]:
            return "differ", "other tensors (names or shapes)"
        if pa[-2] == pb[-2]:
            return "differ", "the same tensors with other values"
        return "unknown", "weights stored differently (another dtype?)"
    return "unknown", "the weights of one cannot be found on this machine to compare"
