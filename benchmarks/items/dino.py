"""2. DINOv2 crop features: `DinoEncoder.encode` with DINOv2-small and -base shapes, batch 1 and 32. See
benchmarks/README.md."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from benchmarks.harness import Row, Section, Sizes, count_flops, rates, timed


def run(sizes: Sizes, ctx: dict) -> Section:
    import numpy as np
    from transformers import Dinov2Config, Dinov2Model

    from rvlf.data.features import DinoEncoder

    sec = Section("2. DINOv2 crop features (random weights, 224x224 crops, fp32)")
    archs = {"small": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536),
             "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for arch, kw in archs.items():
            path = Path(tmp) / arch
            Dinov2Model(Dinov2Config(patch_size=14, image_size=224, **kw)).save_pretrained(path)
            for batch in (1, 32):
                crops = (batch if sizes.quick else (3 if batch == 1 else (64 if arch == "small" else 32)))
                if sizes.quick and batch == 32:
                    crops = 32 if arch == "small" else 8
                enc = DinoEncoder(str(path), batch_size=batch)
                images = rng.integers(0, 256, size=(crops, 224, 224, 3), dtype=np.uint8)
                flops = count_flops(lambda: enc.encode(images[: min(crops, batch)]))
                s = timed(lambda: enc.encode(images), sizes)
                per_crop = flops / min(crops, batch)
                fps = rates(crops / 3, s)
                util = 100 * per_crop * crops / statistics.median(s) / (ctx["peak"] * 1e9)
                sec.rows.append(Row(f"{arch}, batch {batch}", fps, "frames/s",
                                    f"{crops} crops a run; {per_crop / 1e9:.1f} GFLOP a crop; {util:.0f}% of matmul peak"))
    sec.notes.append("`DinoEncoder(path, batch_size=B).encode(crops)` with a `Dinov2Model` saved from "
                     "`Dinov2Config` (small: 384 wide, 12 layers, 6 heads; base: 768, 12, 12; patch 14); "
                     "3 crops (face, two hands) make one frame, so frames/s = crops/s / 3. Utilisation = counted "
                     "FLOPs / median time / the float32 matmul peak measured in this run.")
    return sec
