"""rvlf: the RVLF framework for gloss-free sign language translation (Rao et al.)."""

__version__ = "0.1.0"
