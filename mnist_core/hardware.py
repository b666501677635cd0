"""What this machine's CPU offers, read from /proc/cpuinfo (no TensorFlow import).

The trainer asks it one question: can the CPU compute in bfloat16 natively (AVX512_BF16 or AMX)? There, mixed
bfloat16 training runs the seed CNN about 1.4x as fast as float32 (BENCHMARKS.md). Elsewhere TensorFlow would
emulate bfloat16, which is usually slower than float32 (not measured here: this machine has the hardware), so
float32 stays the default there.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
CGROUP_ROOT = Path("/sys/fs/cgroup")

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


def cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPUs a container's CPU quota allows per period (2.0 = two cores' worth), None without a quota.

    A container host (Streamlit Community Cloud, Docker's --cpus) often limits a process by time, not by cores:
    the process sees all the host's cores but may only use `quota / period` of them. Reads cgroup v2's cpu.max
    ("max 100000" or "150000 100000") or cgroup v1's cpu.cfs_quota_us (-1 = none) and cpu.cfs_period_us.
    """
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def usable_cores(root: Path = CGROUP_ROOT) -> int:
    """The cores this process can keep busy: its CPU affinity (os.cpu_count() where there is none), fewer when a
    container's CPU quota allows less (rounded, at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = cpu_quota(root)
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota + 0.5)))
    return cores


def tensorflow_thread_settings(root: Path = CGROUP_ROOT) -> dict[str, str]:
    """Environment variables that size TensorFlow's thread pools to a CPU quota ({} when there is none to heed).

    TensorFlow sizes its pools by the cores it can schedule on (affinity), not by a quota: under a 1-CPU quota on a
    many-core host it would run a thread per host core, each waiting its turn and spinning out the quota. The
    variables must be set before TensorFlow starts, so `mnist_core` sets them when it is imported.
    """
    if cpu_quota(root) is None:
        return {}
    cores = str(usable_cores(root))
    return {"TF_NUM_INTRAOP_THREADS": cores, "TF_NUM_INTEROP_THREADS": cores}


def cpu_flags(info: dict[str, str] | None = None) -> frozenset[str]:
    return frozenset((cpuinfo() if info is None else info).get("flags", "").split())


def native_bfloat16(info: dict[str, str] | None = None) -> bool:
    """True when the CPU has bfloat16 arithmetic in hardware."""
    return bool(cpu_flags(info) & BFLOAT16_FLAGS)


def default_precision(info: dict[str, str] | None = None) -> str:
    """"bfloat16" (mixed: bfloat16 compute, float32 weights) where the CPU does it natively, else "float32"."""
    return "bfloat16" if native_bfloat16(info) else "float32"
