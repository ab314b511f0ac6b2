"""Which Keras dtype policy a network should compute in on this machine.

``mixed_bfloat16`` (Micikevicius et al., "Mixed Precision Training", ICLR 2018, with bfloat16
instead of float16: no loss scaling needed) is several times faster than ``float32`` on CPUs with
native bfloat16 arithmetic (Intel AMX / AVX512_BF16, Arm BF16) and on GPUs of compute capability
8.0 and newer. On a CPU without it (AVX2 only, e.g. AMD EPYC Milan) TensorFlow emulates every
bfloat16 operation through float32 conversions and a convolution becomes about 10x *slower* than
in float32 (measured: a 4-layer 64-channel 128 x 128 train step, 0.93 s float32 vs 9.4 s
mixed_bfloat16). ``precision: auto`` therefore picks per machine:

==========================  ====================
machine                     ``auto`` resolves to
==========================  ====================
GPU, compute capability 8+  ``mixed_bfloat16``
older GPU                   ``mixed_float16`` (with Keras' loss scaling)
CPU with native bfloat16    ``mixed_bfloat16``
any other CPU               ``float32``
==========================  ====================

A network saved in a bfloat16 policy (its variables are float32 under ``mixed_bfloat16``) runs on
a CPU without native bfloat16 in float32 instead (:func:`runnable_precision`): the same weights,
computed more exactly and about 10x faster.
"""
from __future__ import annotations

import functools
import platform
from pathlib import Path

from ..config import PRECISIONS

#: /proc/cpuinfo flags of native bfloat16 arithmetic (x86 ``flags``, Arm ``Features``).
_BF16_FLAGS = {"amx_bf16", "avx512_bf16", "bf16"}


@functools.lru_cache(maxsize=4)
def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU's feature flags: the first ``flags`` (x86) or ``Features`` (Arm) line of
    ``cpuinfo``; ``None`` where that file does not exist (macOS, Windows)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_has_native_bfloat16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether the CPU computes bfloat16 natively (Intel AMX / AVX512_BF16, Arm BF16), from
    :func:`cpu_flags`; without a flags file only Apple silicon (``arm64`` Darwin, BF16 on M2 and
    later) counts as native."""
    flags = cpu_flags(cpuinfo)
    if flags is None:
        return platform.system() == "Darwin" and platform.machine() == "arm64"
    return bool(_BF16_FLAGS & flags)


@functools.lru_cache(maxsize=1)
def _gpu_compute_capability() -> tuple[int, int] | None:
    """The first visible GPU's compute capability ``(major, minor)``; ``None``: no GPU."""
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    cc = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
    return tuple(cc) if cc else (0, 0)


def resolve_precision(precision: str) -> str:
    """The Keras dtype policy for ``precision``: itself, or for ``auto`` the fastest exact-enough
    policy of this machine (the table of this module's docstring).

    Raises:
        ValueError: a name outside :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    cc = _gpu_compute_capability()
    if cc is not None:
        return "mixed_bfloat16" if cc >= (8, 0) else "mixed_float16"
    return "mixed_bfloat16" if cpu_has_native_bfloat16() else "float32"


def runnable_precision(precision: str) -> str:
    """The policy to *run* a network saved in ``precision`` on this machine: ``float32`` for a
    bfloat16 policy on a CPU without native bfloat16 and no GPU (emulated bfloat16 is ~10x
    slower there); otherwise ``precision`` unchanged."""
    if "bfloat16" in precision and _gpu_compute_capability() is None and not cpu_has_native_bfloat16():
        return "float32"
    return precision
