"""What this machine's CPU offers, read from /proc/cpuinfo (no TensorFlow import).

The trainer asks it one question: can the CPU compute in bfloat16 natively (AVX512_BF16 or AMX)? There, mixed
bfloat16 training runs the seed CNN about 1.4x as fast as float32 (BENCHMARKS.md). Elsewhere TensorFlow would
emulate bfloat16, which is usually slower than float32 (not measured here: this machine has the hardware), so
float32 stays the default there.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")

# Flags of x86 CPUs with bfloat16 dot products in hardware (Intel Cooper Lake / Sapphire Rapids, AMD Zen 4 on).
BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def parse_cpuinfo(text: str) -> dict[str, str]:
    """The first processor's fields ("model name", "flags", "cpu MHz", ...) from /proc/cpuinfo's text."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            key, value = (part.strip() for part in line.split(":", 1))
            fields.setdefault(key, value)
    return fields


@functools.cache
def cpuinfo() -> dict[str, str]:
    """This machine's /proc/cpuinfo fields; empty where there is none (macOS, Windows)."""
    try:
        return parse_cpuinfo(CPUINFO.read_text())
    except OSError:
        return {}


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; os.cpu_count() where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def cpu_flags(info: dict[str, str] | None = None) -> frozenset[str]:
    return frozenset((cpuinfo() if info is None else info).get("flags", "").split())


def native_bfloat16(info: dict[str, str] | None = None) -> bool:
    """True when the CPU has bfloat16 arithmetic in hardware."""
    return bool(cpu_flags(info) & BFLOAT16_FLAGS)


def default_precision(info: dict[str, str] | None = None) -> str:
    """"bfloat16" (mixed: bfloat16 compute, float32 weights) where the CPU does it natively, else "float32"."""
    return "bfloat16" if native_bfloat16(info) else "float32"
