"""Loading by hub id without a network: decide in seconds, then use the Hugging Face cache only.

Without a network, `transformers` / `huggingface_hub` try each file of a hub id with retries and
back-off (measured here: about 85 s before `rvlf extract` with the default DINOv2 gave up). Before
rvlf loads a model by hub id it calls `use_cache_if_hub_unreachable`: unless `HF_HUB_OFFLINE` is
set (then the cache is all there is, as the user asked), it opens one TCP connection to the hub's
host (`HF_ENDPOINT`, or the `HTTPS_PROXY` host when one is set), name lookup included, for at most
`TIMEOUT_S` seconds. When that fails the process goes offline as if `HF_HUB_OFFLINE=1` had been
set: a model in the cache loads, one that is not fails at once with the caller's one-line error
(pass a local folder, or download it once with `hf download ID`). The check runs once a process.
Measured on this (network-less) machine: `DinoEncoder("facebook/dinov2-base")` gave up after 64 s of
retries (about 85 s for the whole `rvlf extract`); now the check takes 0.01 s and the error follows
as soon as transformers is imported, with or without `HF_HUB_OFFLINE`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger("rvlf.hub")

TIMEOUT_S = 3.0
_TRUE = {"1", "on", "yes", "true"}
_verdict: dict[str, bool] = {}
_switched: list[bool] = []  # non-empty once this module set HF_HUB_OFFLINE because the hub was unreachable


def switched_offline() -> bool:
    """Did `use_cache_if_hub_unreachable` switch this process offline (the hub unreachable, not the user's setting)?"""
    return bool(_switched)


def offline_by_setting() -> bool:
    """`HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) is set, now or in huggingface_hub's constants."""
    # huggingface_hub: only once a model is about to be loaded by hub id (its constants read HF_ENDPOINT and
    # HF_HUB_OFFLINE when first imported); importing rvlf.hubcheck stays standard-library only
    import huggingface_hub.constants as hub

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return env.strip().lower() in _TRUE or bool(hub.HF_HUB_OFFLINE)


def _target() -> tuple[str, int]:
    # huggingface_hub: only once a model is about to be loaded by hub id (as in offline_by_setting)
    import huggingface_hub.constants as hub

    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    url = urlsplit(proxy if proxy else hub.ENDPOINT)
    return url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)


def hub_reachable(timeout: float = TIMEOUT_S) -> bool:
    """Can a TCP connection to the hub (or the proxy) be opened within `timeout` seconds? The name
    lookup runs in a thread too, so a missing DNS server cannot stall it longer."""
    host, port = _target()
    key = f"{host}:{port}"
    if key not in _verdict:
        result: list[bool] = []

        def connect() -> None:
            try:
                socket.create_connection((host, port), timeout=timeout).close()
                result.append(True)
            except OSError:
                result.append(False)

        worker = threading.Thread(target=connect, daemon=True)
        worker.start()
        worker.join(timeout)
        _verdict[key] = bool(result and result[0])
    return _verdict[key]


def is_local(name_or_path: str | os.PathLike) -> bool:
    """A folder or file on this machine (not a hub id)."""
    return Path(os.fspath(name_or_path)).expanduser().exists()


def use_cache_if_hub_unreachable(name_or_path: str | os.PathLike | None = None) -> bool:
    """Before loading `name_or_path` (a hub id; a local path returns at once): True when loading
    must use the cache only, because `HF_HUB_OFFLINE` is set or the hub cannot be reached (then
    offline mode is switched on for this process and logged at INFO: the caller's error line says it)."""
    if name_or_path is not None and is_local(name_or_path):
        return False
    # huggingface_hub: only for a hub id, not for a local folder (as in offline_by_setting)
    import huggingface_hub.constants as hub

    if offline_by_setting():  # honoured even when set after huggingface_hub read its environment
        hub.HF_HUB_OFFLINE = True
        return True
    if hub_reachable():
        return False

    host, port = _target()
    log.info("the Hugging Face hub (%s:%d) cannot be reached within %.0f s: loading from the local cache only "
             "(as HF_HUB_OFFLINE=1 does)", host, port, TIMEOUT_S)
    os.environ["HF_HUB_OFFLINE"] = "1"
    hub.HF_HUB_OFFLINE = True
    _switched.append(True)
    return True
