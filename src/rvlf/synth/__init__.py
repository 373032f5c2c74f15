"""The demo's world: a generated sign language, rendered as keypoints and crops (docs/demo-corpus.md).

Nothing here reads real files; `rvlf.data` holds the real-data IO that the corpus writer reuses.

| module | holds |
| --- | --- |
| `grammar` | signs (glosses), their order and the English phrasings of each sequence |
| `render` | signers, sign trajectories over the 77 points, and the face/hand crops a camera would see |
| `corpus` | `CorpusConfig`, `generate_corpus(out_dir)`: the manifest, feature files and stamp |
| `lm` | `pretrain_demo_lm`: the tiny Qwen3 trained on demo-language text, the demo's stand-in for a pretrained LLM |
"""
