"""The demo's stand-in for a pretrained LLM: a tiny Qwen3 that has read text of the demo language.

The paper's stage 2 starts from Qwen3, a language model pretrained on text before it sees any sign
(Sec. 3.2, Table 10: LoRA adapts it). The demo's LM is a few hundred kilobytes and no hub has it, so
`rvlf demo` gives it the same head start at the demo's scale: `pretrain_demo_lm` trains a
`Qwen3ForCausalLM` of the SFT config's `llm.tiny` shape as a causal LM (next-token cross-entropy,
all weights) on sentences drawn from the corpus grammar (`rvlf.synth.grammar`). It is text only:
no sign, keypoint or gloss goes in. No gloss sequence of the dev or test split is drawn; each drawn
sentence is phrased as the corpus phrases its references (`draw_reference`). A drawn sentence can
still read like a held-out one: a WHERE question does not say its place, so two gloss sequences can
share a phrasing, as a training sentence can share one with a test sentence. The folder it writes
is what `from_pretrained` reads (weights in safetensors, `config.json`, `generation_config.json`,
and a tokenizer over the manifest's training texts: the one SFT builds for a tiny LM on the demo
corpus), so SFT loads it through `llm.name_or_path` as it loads Qwen3 from a local folder, tokenizer
included. `lm.json` is written last: a folder without it is not a finished LM.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rvlf import atomic
from rvlf.errors import RvlfError
from rvlf.progress import progress
from rvlf.synth import grammar
from rvlf.synth.corpus import CorpusConfig, draw_reference

VERSION = 1
STAMP = "lm.json"


@dataclass(frozen=True)
class LMPretrainConfig:
    """How much text the demo LM reads and how it learns it (defaults: `rvlf demo`'s)."""

    n_sentences: int = 20_000   # drawn from the grammar: about 200,000 tokens
    epochs: float = 3.0         # passes over them (batches drawn with replacement): 937 steps
    batch_size: int = 64        # sentences per step
    lr: float = 3e-3            # AdamW, one-cycle: 5% warm-up, then cosine to ~0
    seed: int = 0               # the LM's initialisation, the sentences and the batches

    def validate(self) -> None:
        if self.n_sentences < 1 or self.epochs <= 0 or self.batch_size < 1 or self.lr <= 0:
            raise RvlfError("LMPretrainConfig: n_sentences and batch_size must be >= 1, epochs and lr > 0")

    @property
    def steps(self) -> int:
        return max(1, int(self.epochs * self.n_sentences / self.batch_size))


def demo_language_text(manifest: str | Path, n: int, seed: int = 0) -> list[str]:
    """`n` sentences of the demo language, none from a dev or test gloss sequence of `manifest`.

    Each is one phrasing of a gloss sequence that `grammar.sample_frame` draws, chosen as the corpus
    chooses its references (the corpus's `paraphrase_temperature`, from `corpus.json` next to the
    manifest). Raises RvlfError when the manifest has no `gloss` column (not a demo corpus)."""
    manifest = Path(manifest)
    rows = _rows(manifest)
    if any("gloss" not in r for r in rows):
        raise RvlfError(f"{manifest}: a row has no 'gloss': the demo LM is pretrained for a demo corpus only")
    held_out = {tuple(r["gloss"].split()) for r in rows if r["split"] != "train"}
    temperature = CorpusConfig().paraphrase_temperature
    stamp = manifest.parent / "corpus.json"
    if stamp.is_file():
        temperature = json.loads(stamp.read_text(encoding="utf-8"))["config"]["paraphrase_temperature"]
    rng = np.random.default_rng([seed, 5])
    texts: list[str] = []
    while len(texts) < n:
        sentence = grammar.realise(grammar.sample_frame(rng))
        if sentence.gloss not in held_out:
            texts.append(draw_reference(sentence, rng, temperature))
    return texts


def pretrain_demo_lm(manifest: str | Path, out_dir: str | Path, *, shape: dict, lang: str = "en",
                     config: LMPretrainConfig | None = None, stamp_extra: dict | None = None,
                     progress: bool = True) -> Path:
    """Train the demo's base LM on demo-language text and save it to `out_dir`; returns `out_dir`.

    `shape`: `build_tiny_qwen3`'s keyword arguments (the SFT config's `llm.tiny`). The tokenizer is
    `tiny_chat_tokenizer` over the manifest's `train` texts. Each sequence is `<s>` + sentence +
    `<|im_end|>` (the stop token SFT's targets end with); the loss is the mean next-token
    cross-entropy (nats). A folder finished with the same stamp
    (`lm.json`: this config, the shape, the corpus stamp and `stamp_extra`, e.g. the code digest
    and torch thread count that `rvlf demo` adds) is returned at once."""
    # torch, and transformers via rvlf.models.slt_lm: only to train the LM (the stamp check, `is_finished`,
    # and `demo_language_text` need neither)
    import torch

    from rvlf.models.slt_lm import IM_END, build_tiny_qwen3, tiny_chat_tokenizer

    config = config or LMPretrainConfig()
    config.validate()
    manifest, out = Path(manifest), Path(out_dir)
    stamp = lm_stamp(manifest, shape, lang, config, stamp_extra)
    if is_finished(out, stamp):
        return out
    (out / STAMP).unlink(missing_ok=True)

    tokenizer = tiny_chat_tokenizer([r["text"] for r in _rows(manifest) if r["split"] == "train"], lang)
    end = tokenizer.convert_tokens_to_ids(IM_END)
    sequences = [[tokenizer.bos_token_id, *tokenizer(t, add_special_tokens=False)["input_ids"], end]
                 for t in demo_language_text(manifest, config.n_sentences, config.seed)]
    lm = build_tiny_qwen3(tokenizer, seed=config.seed, **shape)
    optimizer = torch.optim.AdamW(lm.parameters(), lr=config.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.steps,
                                                   pct_start=0.05)
    rng = np.random.default_rng([config.seed, 6])
    bar = _progress(config.steps, progress)
    lm.train()
    for _ in range(config.steps):
        batch = [sequences[i] for i in rng.integers(len(sequences), size=config.batch_size)]
        width = max(map(len, batch))
        ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for k, seq in enumerate(batch):
            ids[k, : len(seq)] = torch.tensor(seq)
            mask[k, : len(seq)] = 1
        loss = lm(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
        if not math.isfinite(loss.item()):
            raise RvlfError(f"demo LM pretraining diverged (loss {loss.item()}); lower LMPretrainConfig.lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        bar.update(1)
    bar.close()
    lm.eval()
    out.mkdir(parents=True, exist_ok=True)
    lm.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    atomic.write_text(out / STAMP, json.dumps({**stamp, "final_loss": round(float(loss.item()), 4)}, indent=1) + "\n")
    return out


def lm_stamp(manifest: str | Path, shape: dict, lang: str = "en", config: LMPretrainConfig | None = None,
             stamp_extra: dict | None = None) -> dict:
    """What the LM `pretrain_demo_lm` makes depends on (the content of `lm.json`, less `final_loss`)."""
    corpus_stamp = Path(manifest).parent / "corpus.json"
    stamp = {"version": VERSION, "config": dataclasses.asdict(config or LMPretrainConfig()), "shape": dict(shape),
             "lang": lang, "corpus": json.loads(corpus_stamp.read_text(encoding="utf-8")) if corpus_stamp.is_file()
             else None, **(stamp_extra or {})}
    return json.loads(json.dumps(stamp))


def is_finished(out_dir: str | Path, stamp: dict) -> bool:
    """Whether `out_dir` holds a finished demo LM made with exactly `stamp`."""
    try:
        kept = json.loads((Path(out_dir) / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    kept.pop("final_loss", None)
    return kept == stamp and (Path(out_dir) / "model.safetensors").is_file()


def _rows(manifest: Path) -> list[dict]:
    """The manifest's JSONL rows (the demo corpus writes it; no validation beyond JSON)."""
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]


def _progress(total: int, enabled: bool):
    return progress(total, desc="demo LM", unit="step", enabled=enabled)
