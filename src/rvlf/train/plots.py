"""Learning-curve plots from a run's `metrics.jsonl` (paper Fig. 3)."""

from __future__ import annotations

import json
from pathlib import Path

from rvlf import atomic


def read_metrics(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_learning_curve(metrics_path: str | Path, out_png: str | Path, title: str = "") -> Path | None:
    """Dev BLEU-4 / ROUGE-L / reward against steps (the step-0 point is the starting model,
    drawn as a dashed baseline), and the training reward when the run logged one."""
    # Matplotlib: only when a learning curve is drawn (the end of a grpo run, the demo), headless (Agg)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after use("Agg"): no display is looked for

    records = read_metrics(metrics_path)
    dev = [r for r in records if "dev_bleu4" in r]
    train = [r for r in records if "reward_mean" in r]
    if not dev and not train:
        return None
    fig, axes = plt.subplots(1, 2 if train else 1, figsize=(11 if train else 6, 4), squeeze=False)
    ax = axes[0][0]
    for key, label, colour in (("dev_bleu4", "BLEU-4", "tab:blue"), ("dev_rouge_l", "ROUGE-L", "tab:green"),
                               ("dev_reward", "reward x100", "tab:orange")):
        pts = [(r["step"], r[key]) for r in dev if key in r]
        if not pts:
            continue
        ax.plot(*zip(*pts), marker="o", color=colour, label=label)
        base = [v for s, v in pts if s == 0]
        if base:
            ax.axhline(base[0], color=colour, linestyle="--", linewidth=1, alpha=0.7)
    ax.set_xlabel("step")
    ax.set_ylabel("dev score")
    ax.set_title(title or "dev scores (dashed: starting model)")
    ax.grid(alpha=0.3)
    ax.legend()
    if train:
        ax = axes[0][1]
        steps = [r["step"] for r in train]
        mean = [r["reward_mean"] for r in train]
        ax.plot(steps, mean, color="tab:orange", label="mean sampled reward")
        if all("reward_std" in r for r in train):
            std = [r["reward_std"] for r in train]
            ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                            color="tab:orange", alpha=0.2, label="+/- std within the batch")
        ax.set_xlabel("step")
        ax.set_ylabel("reward (Eq. 15)")
        ax.set_title("training reward")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    out_png = Path(out_png)
    atomic.write_file(out_png, lambda tmp: fig.savefig(tmp, format="png", dpi=110), what="the learning curve")
    plt.close(fig)
    return out_png
