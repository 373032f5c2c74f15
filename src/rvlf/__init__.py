"""rvlf: the RVLF framework for gloss-free sign language translation (Rao et al.).

    from rvlf import SignTranslator        # a trained model from Python (rvlf.inference.api)

Packages, bottom to top (docs/architecture.md has the map a test enforces): `text`, `data`, `models`,
`rl`, `train` (components and the three recipes), `inference` (using a trained model: API, decoding,
export, app), `runs` (demo, report, memory plan), `commands` (one module per `rvlf` sub-command).
"""

import importlib
import importlib.machinery
import sys
import warnings

__version__ = "0.1.0"

__all__ = ["SignTranslator", "Hypothesis", "__version__"]

# Modules that moved into packages (issue 32). The old path still imports, as the same module object,
# with one FutureWarning per process naming the new one.
MOVED = {
    "rvlf.api": "rvlf.inference.api",
    "rvlf.app": "rvlf.inference.app",
    "rvlf.export": "rvlf.inference.export",
    "rvlf.translate": "rvlf.inference.pipeline",
    "rvlf.overlay": "rvlf.inference.overlay",
    "rvlf.train.inference": "rvlf.inference.loading",
    "rvlf.train.exported": "rvlf.inference.model_folder",
    "rvlf.report": "rvlf.runs.report",
    "rvlf.memory": "rvlf.runs.memory_plan",
    "rvlf.demo": "rvlf.runs.demo",
    "rvlf.training_data": "rvlf.train.training_data",
    "rvlf.train.configs": "rvlf.train.recipe_configs",
}


class _MovedModules:
    """`import rvlf.api` -> the module `rvlf.inference.api` (the same object), with a FutureWarning: a
    meta-path finder and its loader (PEP 451 `find_spec`, `create_module`, `exec_module`; no `importlib.abc`,
    which would add a dozen modules to every `rvlf` start-up)."""

    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name in MOVED else None

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} has moved to {new}; import it from there (the old path will be removed)",
                      FutureWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module) -> None:
        pass  # the new module is already executed


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())


def __getattr__(name: str):
    if name in ("SignTranslator", "Hypothesis"):
        # rvlf.inference.api (NumPy; torch and transformers when a model loads): on first use of these
        # names, so that `import rvlf` (and every `rvlf` start-up) imports only the standard library
        from rvlf.inference import api

        return getattr(api, name)
    raise AttributeError(f"module 'rvlf' has no attribute {name!r}")
