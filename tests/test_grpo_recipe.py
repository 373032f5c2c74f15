"""Stage 3 end to end (issue 6): one GRPO step on a tiny model, and `rvlf grpo` through the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import CHEAP, REPO, cli, tiny_runs




@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    """(manifest, SFT run folder): tiny stage 1 (3 steps), then a tiny-Qwen3 SFT (4 steps)."""
    manifest, _, sft = tiny_runs(tmp_path_factory.mktemp("grpo"), sft_steps=4)
    return manifest, sft


def _completions(tokenizer, texts: list[str], stop: int, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Completion ids and mask in `SignLanguageLM.generate`'s layout: tokens, the stop token, padding."""
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] + [stop] for t in texts]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = True
    return ids, mask


def test_one_grpo_step_raises_the_best_sample_and_lowers_the_worst(sft_run):
    from rvlf.config import LLMConfig
    from rvlf.data.dataset import collate
    from rvlf.rl.grpo import group_advantages, grpo_loss
    from rvlf.rl.rewards import translation_reward
    from rvlf.train.common import load_samples, split_dataset
    from rvlf.train.recipe_configs import GRPOConfig, GRPOParams
    from rvlf.train.sign_lm import load_sft, merged_policy

    _, sft = sft_run
    sft_cfg, sft_model = load_sft(sft / "last")
    cfg = GRPOConfig(llm=LLMConfig(lora_r=8, lora_alpha=16, lora_dropout=0.0), grpo=GRPOParams(max_new_tokens=8))
    torch.manual_seed(0)
    policy = merged_policy(cfg, sft_model)
    trainable = policy.trainable_parameters()
    assert trainable["lora"] and not trainable["projector"] and not trainable["encoder"]

    data = split_dataset(sft_cfg.data, load_samples(sft_cfg.data), "dev", use_dino=True)
    batch = collate([data[0]])
    kp, fm, dino, ref = batch["keypoints"], batch["frame_mask"], batch["dino"], batch["texts"][0]

    # a group: 4 samples of the policy, plus the reference and a prefix of it, so rewards are distinct
    policy.eval()
    torch.manual_seed(0)
    gen = policy.generate(kp, fm, dino, num_beams=1, do_sample=True, num_return_sequences=4, temperature=1.5,
                          max_new_tokens=8)
    words = ref.split()
    texts = gen.texts + [ref, " ".join(words[: max(2, len(words) - 2)])]
    k = len(texts)
    ids, mask = _completions(policy.tokenizer, texts, policy.prompt.stop_ids[0], policy.pad_id)
    rewards = torch.tensor(translation_reward(texts, [ref] * k, "en"))
    best, worst = int(rewards.argmax()), int(rewards.argmin())
    assert texts[best] == ref and rewards[best] == pytest.approx(1.0)
    assert rewards[worst] < rewards[-1] < rewards[best]
    adv = group_advantages(rewards, k)
    assert adv[best] > 0 > adv[worst]

    def seq_logps() -> torch.Tensor:
        with torch.no_grad():
            return (policy.completion_logprobs(kp, fm, dino, ids, mask, k) * mask).sum(1)

    policy.train()
    before = seq_logps()
    with torch.no_grad(), policy.adapter_disabled():
        ref_logps = policy.completion_logprobs(kp, fm, dino, ids, mask, k)
    logps = policy.completion_logprobs(kp, fm, dino, ids, mask, k)
    # the fresh adapter starts as the reference policy: KL 0
    assert torch.allclose(logps.detach(), ref_logps, atol=1e-5)
    loss = grpo_loss(logps, logps.detach(), ref_logps, adv, mask, epsilon=0.2, beta=0.04)
    opt = torch.optim.AdamW(trainable["lora"], lr=1e-3, weight_decay=0.0)
    opt.zero_grad()
    loss.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in trainable["lora"])
    frozen_before = {n: p.detach().clone() for n, p in policy.fusion.named_parameters()}
    opt.step()
    after = seq_logps()

    delta = after - before
    assert delta[best] > 1e-3, (texts, rewards.tolist(), delta.tolist())
    assert delta[worst] < -1e-3, (texts, rewards.tolist(), delta.tolist())
    # the step follows the advantages: the objective sum_i A_i log pi(o_i) went up
    assert float((adv * delta).sum()) > 0
    assert all(torch.equal(p, frozen_before[n]) for n, p in policy.fusion.named_parameters())
    with torch.no_grad(), policy.adapter_disabled():  # the reference policy did not move
        assert torch.allclose(policy.completion_logprobs(kp, fm, dino, ids, mask, k), ref_logps, atol=1e-5)


def test_grpo_cli_writes_curve_metrics_and_baseline(sft_run, tmp_path, capsys):
    manifest, sft = sft_run
    out = tmp_path / "grpo"
    rc = cli(["grpo", "--config", str(REPO / "configs/demo/grpo.yaml"), "--out", str(out),
               "--init", str(sft / "last"), "--max-steps", "2", f"data.root={manifest}", "train.batch_size=2",
               "grpo.num_generations=4", "grpo.max_new_tokens=8", *CHEAP])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["steps"] == 2 and "baseline_dev" in printed

    png = out / "learning_curve.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        for key in ("reward_mean", "reward_std", "kl", "clip", "completion_length", "flat_group_share"):
            assert key in r, key
        assert r["flat_group_share"] in (0.0, 0.5, 1.0)  # 2 groups a step
        assert 0.0 <= r["reward_mean"] <= 1.0 and r["kl"] >= 0.0 and 0.0 <= r["clip"] <= 1.0
        assert 1.0 <= r["completion_length"] <= 8.0
    baseline_log = [r for r in records if r["step"] == 0 and "dev_bleu4" in r]
    assert len(baseline_log) == 1

    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 2
    assert set(results["baseline_dev"]) >= {"bleu1", "bleu4", "rouge_l", "reward"}
    assert results["baseline_dev"]["bleu4"] == pytest.approx(baseline_log[0]["dev_bleu4"], abs=1e-4)
    assert set(results["dev"]) >= {"bleu4", "reward"} and "test" in results
    for name in ("best", "last"):
        assert (out / name / "config.yaml").is_file()
    # the stage-3 checkpoint is decodable: `rvlf evaluate` on it
    rc = cli(["evaluate", "--checkpoint", str(out / "last"), "--split", "dev", "--num-beams", "1"])
    assert rc == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["samples"] == 4 and 0.0 <= scores["reward"] <= 100.0


def _grpo_cli(manifest, sft, out, *extra: str) -> int:
    return cli(["grpo", "--config", str(REPO / "configs/demo/grpo.yaml"), "--out", str(out),
                "--init", str(sft / "last"), f"data.root={manifest}", "train.batch_size=2", "grpo.num_generations=4",
                "grpo.max_new_tokens=6", *CHEAP, *extra])


def test_log_probs_at_the_sampling_temperature_and_first_ratio_exactly_one(sft_run, tmp_path, monkeypatch):
    """grpo.temperature=0.5, mu=2, LoRA dropout 0.3: sampling and every log-prob pass (policy, old,
    reference) use T=0.5; the first update of every step has ratio exactly 1, the second does not."""
    import rvlf.train.grpo as recipe
    from rvlf.models.slt_lm import SignLanguageLM

    temps, calls = [], []
    real_logprobs, real_generate, real_terms = (SignLanguageLM.completion_logprobs, SignLanguageLM.generate,
                                                recipe.grpo_loss_terms)

    def logprobs(self, *args, **kwargs):
        temps.append(("logprobs", kwargs.get("temperature")))
        return real_logprobs(self, *args, **kwargs)

    def generate(self, *args, **kwargs):
        if kwargs.get("do_sample"):
            temps.append(("sample", kwargs.get("temperature")))
        return real_generate(self, *args, **kwargs)

    def terms(logps, old_logps, ref_logps, advantages, mask, **kw):
        calls.append((logps.detach().clone(), old_logps.clone(), mask.clone(), logps.requires_grad))
        return real_terms(logps, old_logps, ref_logps, advantages, mask, **kw)

    monkeypatch.setattr(SignLanguageLM, "completion_logprobs", logprobs)
    monkeypatch.setattr(SignLanguageLM, "generate", generate)
    monkeypatch.setattr(recipe, "grpo_loss_terms", terms)
    manifest, sft = sft_run
    assert _grpo_cli(manifest, sft, tmp_path / "g", "--max-steps", "2", "grpo.temperature=0.5", "grpo.mu=2",
                     "llm.lora_dropout=0.3", "train.lr=1e-2") == 0
    assert temps and all(t == 0.5 for _, t in temps), temps
    assert sum(kind == "sample" for kind, _ in temps) == 2
    assert len(calls) == 4  # 2 steps x mu 2
    for step in range(2):
        (logps1, old1, mask1, grad1), (logps2, old2, mask2, grad2) = calls[2 * step], calls[2 * step + 1]
        assert grad1 and grad2
        ratio1 = torch.exp(logps1 - old1)[mask1]
        assert torch.equal(ratio1, torch.ones_like(ratio1))  # exactly 1, dropout 0.3 notwithstanding
        assert torch.equal(old2, old1)  # the second update reuses the first update's log-probs
        assert not torch.equal(logps2[mask2], old2[mask2])  # the policy moved (and dropout resampled)


def test_num_generations_and_other_settings_are_range_checked(sft_run, tmp_path, capsys):
    manifest, sft = sft_run
    for bad, word in (("grpo.num_generations=1", "num_generations"), ("grpo.temperature=0", "temperature"),
                      ("grpo.top_p=1.5", "top_p"), ("grpo.epsilon=-0.1", "epsilon"), ("grpo.mu=0", "mu"),
                      ("grpo.beta=-1", "beta"), ("grpo.top_k=-2", "top_k"), ("grpo.reward_lambda=1.5", "reward_lambda"),
                      ("grpo.max_new_tokens=0", "max_new_tokens")):
        capsys.readouterr()
        assert _grpo_cli(manifest, sft, tmp_path / "bad", bad) == 2, bad
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"grpo.{word}" in err[0] and "Traceback" not in err[0], (bad, err)
    assert not (tmp_path / "bad" / "last").exists()


def test_micro_batches_give_the_update_of_the_unsplit_step(sft_run, tmp_path, monkeypatch):
    """grpo.micro_batch_size=3 over 2 inputs x 4 samples (micro-batches of 3, 3, 2 completions that cut
    across groups): same loss and, with plain SGD, the same LoRA update as one forward/backward of all 8."""
    from safetensors.torch import load_file

    from rvlf.models.slt_lm import SignLanguageLM

    sizes = []
    real = SignLanguageLM.completion_logprobs

    def logprobs(self, keypoints, frame_mask, dino, completion_ids, *args, **kwargs):
        sizes.append(completion_ids.shape[0])
        return real(self, keypoints, frame_mask, dino, completion_ids, *args, **kwargs)

    monkeypatch.setattr(SignLanguageLM, "completion_logprobs", logprobs)
    manifest, sft = sft_run
    sgd = ["--max-steps", "1", "train.optimizer=sgd", "train.momentum=0", "train.weight_decay=0", "train.grad_clip=0",
           "train.lr=10", "llm.lora_dropout=0", "train.eval_every_steps=100"]
    runs = {}
    for m in (0, 3):
        sizes.clear()
        out = tmp_path / f"m{m}"
        assert _grpo_cli(manifest, sft, out, *sgd, f"grpo.micro_batch_size={m}") == 0
        runs[m] = (load_file(str(out / "last" / "model.safetensors")),
                   [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line][0],
                   list(sizes))
    (whole, log0, sizes0), (split, log3, sizes3) = runs[0], runs[3]
    assert sizes0 == [8, 8] and sizes3 == [3, 3, 2, 3, 3, 2]  # reference pass, then the policy pass
    assert log3["loss"] == pytest.approx(log0["loss"], abs=1e-6)
    assert log3["kl"] == pytest.approx(log0["kl"], abs=1e-6)
    assert log3["reward_mean"] == log0["reward_mean"]  # the same samples
    lora_b = [k for k in whole if k.startswith("lora.") and "lora_B" in k]
    assert lora_b and any(whole[k].abs().max() > 1e-4 for k in lora_b)  # the step moved the adapter
    for key in whole:
        torch.testing.assert_close(split[key], whole[key], rtol=1e-4, atol=1e-6)
