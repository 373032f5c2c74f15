"""rvlf: the RVLF framework for gloss-free sign language translation (Rao et al.).

    from rvlf import SignTranslator        # a trained model from Python (rvlf.api)
"""

__version__ = "0.1.0"

__all__ = ["SignTranslator", "Hypothesis", "__version__"]


def __getattr__(name: str):
    # imported on first use, so that `import rvlf` (and the CLI's start-up) does not load torch
    if name in ("SignTranslator", "Hypothesis"):
        from rvlf import api

        return getattr(api, name)
    raise AttributeError(f"module 'rvlf' has no attribute {name!r}")
