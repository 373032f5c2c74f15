"""Without a network, loading by hub id fails at once with one line (pass a local folder or
download it once), instead of a minute of retries; `HF_HUB_OFFLINE` is honoured. "No network" is
a hub endpoint on a closed local port (refused at once), so the tests behave the same with a network."""

from __future__ import annotations

import pytest

from helpers import cli_output
from rvlf import hubcheck


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE not set, the hub unreachable, an empty cache."""
    import huggingface_hub.constants as hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(hubcheck, "_verdict", {})
    monkeypatch.setattr(hubcheck, "_switched", [])
    return hub


@pytest.mark.parametrize("offline_setting", [False, True])
def test_extract_with_a_hub_dinov2_and_no_network_is_one_line(no_network, monkeypatch, fixtures_dir, tmp_path,
                                                              offline_setting):
    """The issue's recipe (`rvlf extract` with a hub DINOv2, no network: about a minute of retries,
    85 s measured before); with and without HF_HUB_OFFLINE=1."""
    if offline_setting:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rc, out, err = cli_output("extract", fixtures_dir / "signer_58frames.mp4", "--out", tmp_path / "o",
                              "--dino", "someone/dinov2-not-cached", "--device", "cpu")
    assert rc == 2 and err.count("\n") == 1, err
    assert err.startswith("rvlf extract: error: cannot load DINOv2 model 'someone/dinov2-not-cached'")
    assert "the hub is offline or cannot be reached" in err
    assert "`hf download someone/dinov2-not-cached` or pass a local folder" in err
    assert "Retrying" not in err and not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    assert no_network.HF_HUB_OFFLINE is True                  # the rest of the process uses the cache only


def test_lm_and_translator_by_hub_id_without_network_say_what_to_do(no_network):
    """Variant: the LM (`llm.name_or_path` a hub id) and `SignTranslator.from_pretrained("org/name")`."""
    from rvlf import SignTranslator
    from rvlf.errors import RvlfError
    from rvlf.models.slt_lm import load_causal_lm

    assert hubcheck.hub_reachable() is False
    with pytest.raises(RvlfError, match=r"cannot load causal LM 'someone/no-lm': .*\(a hub id: download it once "
                                        r"with `hf download someone/no-lm` or set llm.name_or_path to a local folder\)"):
        load_causal_lm("someone/no-lm")
    with pytest.raises(RvlfError, match=r"someone/no-model: no such local folder, and the hub model is not in the "
                                        r"Hugging Face cache while the hub cannot be reached; download it once"):
        SignTranslator.from_pretrained("someone/no-model")


def test_a_local_folder_never_asks_the_network(no_network, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(hubcheck, "hub_reachable", lambda *a, **k: calls.append(1) or False)
    assert hubcheck.use_cache_if_hub_unreachable(tmp_path) is False and calls == []
    assert no_network.HF_HUB_OFFLINE is False
