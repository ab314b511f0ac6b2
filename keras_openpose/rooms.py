"""Lazy public names for the package's rooms (PEP 562 module ``__getattr__``): a room's
``__init__`` lists which of its modules defines each public name, and the module loads on the
first use of one of its names, so ``import keras_openpose.data`` costs nothing until used.
"""
from __future__ import annotations

import importlib


def lazy_exports(package: str, names: dict[str, str]):
    """``(__getattr__, __all__)`` for the package ``package`` whose public names live in its
    modules: ``names`` = ``{public name: module of the package}``.

    Raises (from the returned ``__getattr__``):
        AttributeError: a name the package does not export.
    """
    def __getattr__(name):
        if name in names:
            return getattr(importlib.import_module(f".{names[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__, sorted(names)
