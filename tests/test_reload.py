"""A checkpoint reloads into exactly the model that was trained (issue 15): `rvlf evaluate RUN/best`
reproduces the run's logged best dev scores and its test translations, for SFT and GRPO, in float32
and bfloat16 (a tiny random LM trains in `llm.dtype`, as it is saved and reloaded)."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import CHEAP, REPO, cli, tiny_runs

SCORES = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "reward")


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    root = tmp_path_factory.mktemp("reload")
    manifest, s1, _ = tiny_runs(root)
    return root, manifest, s1


def _evaluate(capsys, checkpoint, split: str, translations) -> dict:
    capsys.readouterr()
    assert cli(["evaluate", "--checkpoint", str(checkpoint), "--split", split, "--translations", str(translations)]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _check_run(run, capsys, tmp_path, dtype: str) -> None:
    from safetensors import safe_open

    from rvlf.inference.loading import load_stage

    tmp_path.mkdir()
    results = json.loads((run / "results.json").read_text())
    best = results["best_dev"]
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(all(r.get(f"dev_{k}") == round(best[k], 6) for k in SCORES) for r in logged)

    # the weights trained are the weights reloaded, dtype included
    with safe_open(str(run / "best" / "base_lm" / "model.safetensors"), "pt") as f:
        saved = {f.get_tensor(name).dtype for name in f.keys()}
    assert saved == {getattr(torch, dtype)}
    _, model, _ = load_stage(run / "best")
    assert {p.dtype for n, p in model.lm.named_parameters() if "lora_" not in n} == {getattr(torch, dtype)}

    dev = _evaluate(capsys, run / "best", "dev", tmp_path / "dev.tsv")
    assert {k: dev[k] for k in SCORES} == {k: round(best[k], 2) for k in SCORES}
    test = _evaluate(capsys, run / "best", "test", tmp_path / "test.tsv")
    assert {k: test[k] for k in SCORES} == {k: round(results["test"][k], 2) for k in SCORES}
    assert (tmp_path / "test.tsv").read_text() == (run / "test_translations.tsv").read_text()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_evaluate_best_reproduces_the_logged_dev_scores(stage1, dtype, capsys, tmp_path):
    root, manifest, s1 = stage1
    sft = root / f"sft-{dtype}"
    assert cli(["sft", "--config", str(REPO / "configs/demo/sft.yaml"), "--out", str(sft), "--init", str(s1 / "last"),
                "--max-steps", "6", f"data.root={manifest}", "train.batch_size=4", "train.eval_every_epochs=0.5",
                f"llm.dtype={dtype}", *CHEAP]) == 0
    _check_run(sft, capsys, tmp_path / "sft", dtype)
    grpo = root / f"grpo-{dtype}"
    assert cli(["grpo", "--config", str(REPO / "configs/demo/grpo.yaml"), "--out", str(grpo), "--init", str(sft / "best"),
                "--max-steps", "2", f"data.root={manifest}", "train.batch_size=2", "train.eval_every_steps=1",
                "grpo.num_generations=4", "grpo.max_new_tokens=6", "train.lr=1e-2", *CHEAP]) == 0
    _check_run(grpo, capsys, tmp_path / "grpo", dtype)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_trained_tiny_lm_is_the_reloaded_one(dtype, tmp_path):
    """The tiny base LM that SFT builds and trains is bit for bit the one every checkpoint rebuilds
    (`from_pretrained` in `llm.dtype`): its parameters are in `llm.dtype` and RoPE's `inv_freq` buffer
    stays float32 as `from_pretrained` recomputes it (a whole-model `.to(bfloat16)` would round it)."""
    from rvlf.config import LLMConfig
    from rvlf.models.slt_lm import load_causal_lm
    from rvlf.train.sign_lm import build_language_model

    llm = LLMConfig(tiny={"hidden_size": 32, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
                          "intermediate_size": 64}, dtype=dtype)
    built, tok = build_language_model(llm, ["the cat sat on the mat", "a dog ran home"], "en")
    assert {p.dtype for p in built.parameters()} == {getattr(torch, dtype)}
    assert {b.dtype for _, b in built.named_buffers()} == {torch.float32}
    built.save_pretrained(str(tmp_path / "base_lm"))
    reloaded = load_causal_lm(str(tmp_path / "base_lm"), dtype=dtype)
    ids = torch.tensor([tok("the cat sat on the mat a dog ran home " * 6, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logits = [m.eval()(ids).logits for m in (built, reloaded)]
    assert torch.equal(logits[0], logits[1])
