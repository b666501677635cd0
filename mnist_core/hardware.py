"""What this machine offers: its CPU (from /proc/cpuinfo) and the share of it this container may use (cgroups).
No TensorFlow import.

The trainer asks it one question: can the CPU compute in bfloat16 natively (AVX512_BF16 or AMX)? There, mixed
bfloat16 training runs the seed CNN about 1.4x as fast as float32 (BENCHMARKS.md). Elsewhere TensorFlow would
emulate bfloat16, which is usually slower than float32 (not measured here: this machine has the hardware), so
float32 stays the default there.
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
MEMINFO = Path("/proc/meminfo")
UNLIMITED = 2**60  # cgroup v1 writes "no limit" as a huge number (9223372036854771712)

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


def affinity_cores() -> int:
    """The cores this process may run on (its CPU affinity; os.cpu_count() where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def usable_cores() -> int:
    """Whole cores worth running threads on: the CPU affinity, cut to the container's CPU quota (a container with
    a 1.5-CPU quota on a 64-core host gets 2 threads, not 64 that would wait for each other)."""
    return container().threads


@dataclass(frozen=True)
class Container:
    """What this process may use: `cpus` (the quota, fractional; the affinity when there is none) and memory in
    bytes (`memory_limit` None when unlimited; `memory_used` by this container, or by the machine without one)."""

    cpus: float
    memory_limit: int | None
    memory_used: int | None
    memory_total: int | None  # the machine's RAM
    source: str  # "cgroup v2", "cgroup v1" or "machine"

    @property
    def threads(self) -> int:
        return max(1, min(affinity_cores(), math.ceil(self.cpus - 1e-9)))

    @property
    def memory_available(self) -> int | None:
        """Bytes a new job may still take: the limit (or the machine's RAM) minus what is used."""
        ceiling = self.memory_limit or self.memory_total
        if ceiling is None or self.memory_used is None:
            return None
        return max(0, ceiling - self.memory_used)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _number(text: str | None) -> int | None:
    if text is None or not re.fullmatch(r"\d+", text):
        return None
    value = int(text)
    return None if value >= UNLIMITED else value


def _cgroup_dirs(root: Path, proc_self_cgroup: Path, controller: str | None) -> list[Path]:
    """Where this process's cgroup files may be: its own cgroup's folder first, then the mount's root (inside a
    container the mount usually shows the container's own cgroup as the root)."""
    lines = (_read(proc_self_cgroup) or "").splitlines()
    dirs = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controller is None and controllers == "":
            dirs.append(root / path.lstrip("/"))
        elif controller is not None and controller in controllers.split(","):
            base = root / controllers
            dirs.append(base / path.lstrip("/"))
            dirs.append(base)
    dirs.append(root if controller is None else root / controller)
    return [folder for index, folder in enumerate(dirs) if folder.is_dir() and folder not in dirs[:index]]


def _first(dirs: list[Path], name: str) -> str | None:
    for folder in dirs:
        text = _read(folder / name)
        if text is not None:
            return text
    return None


def _meminfo(path: Path) -> dict[str, int]:
    found = {}
    for line in (_read(path) or "").splitlines():
        match = re.match(r"(\w+):\s+(\d+) kB", line)
        if match:
            found[match.group(1)] = int(match.group(2)) * 1024
    return found


def read_container(root: Path = CGROUP_ROOT, proc_self_cgroup: Path = PROC_SELF_CGROUP,
                   meminfo: Path = MEMINFO) -> Container:
    """The CPU quota and memory limit of this process's cgroup (v2, else v1), else the machine's own figures."""
    machine = _meminfo(meminfo)
    total = machine.get("MemTotal")
    machine_used = total - machine["MemAvailable"] if total and "MemAvailable" in machine else None
    cpus = float(affinity_cores())
    if (root / "cgroup.controllers").exists():  # cgroup v2: one hierarchy
        dirs = _cgroup_dirs(root, proc_self_cgroup, None)
        quota = (_first(dirs, "cpu.max") or "max").split()
        if len(quota) == 2 and quota[0] != "max" and quota[0].isdigit() and quota[1].isdigit() and int(quota[1]):
            cpus = min(cpus, int(quota[0]) / int(quota[1]))
        limit = _number(_first(dirs, "memory.max"))
        used = _number(_first(dirs, "memory.current"))
        return Container(cpus, limit, used if limit else machine_used, total, "cgroup v2")
    cpu_dirs = _cgroup_dirs(root, proc_self_cgroup, "cpu")
    memory_dirs = _cgroup_dirs(root, proc_self_cgroup, "memory")
    if cpu_dirs or memory_dirs:  # cgroup v1: a hierarchy per controller
        quota, period = _first(cpu_dirs, "cpu.cfs_quota_us"), _first(cpu_dirs, "cpu.cfs_period_us")
        if quota and period and quota.lstrip("-").isdigit() and period.isdigit() and int(quota) > 0 and int(period):
            cpus = min(cpus, int(quota) / int(period))
        limit = _number(_first(memory_dirs, "memory.limit_in_bytes"))
        used = _number(_first(memory_dirs, "memory.usage_in_bytes"))
        return Container(cpus, limit, used if limit else machine_used, total, "cgroup v1")
    return Container(cpus, None, machine_used, total, "machine")


def container() -> Container:
    """This process's container, read now (memory use changes; the files are cheap to read)."""
    return read_container()


def cpu_flags(info: dict[str, str] | None = None) -> frozenset[str]:
    return frozenset((cpuinfo() if info is None else info).get("flags", "").split())


def native_bfloat16(info: dict[str, str] | None = None) -> bool:
    """True when the CPU has bfloat16 arithmetic in hardware."""
    return bool(cpu_flags(info) & BFLOAT16_FLAGS)


def default_precision(info: dict[str, str] | None = None) -> str:
    """"bfloat16" (mixed: bfloat16 compute, float32 weights) where the CPU does it natively, else "float32"."""
    return "bfloat16" if native_bfloat16(info) else "float32"


def tensorflow_thread_settings(found: Container | None = None) -> dict[str, str]:
    """Environment variables that size TensorFlow's thread pools to a CPU quota ({} when there is none to heed).

    TensorFlow sizes its pools by the cores it can schedule on (affinity), not by a quota: under a 1-CPU quota on a
    many-core host it would run a thread per host core, each waiting its turn and spinning out the quota. The
    variables must be set before TensorFlow starts, so `mnist_core` sets them when it is imported.
    """
    found = found or container()
    if found.cpus >= affinity_cores():
        return {}
    threads = str(found.threads)
    return {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads}
