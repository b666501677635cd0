"""mnist_core.hardware: reading /proc/cpuinfo, the default training precision, and the container's CPU quota and
memory limit from cgroup files (fake trees here)."""

import pytest

from mnist_core import hardware

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_bf16 avx512_vnni

processor\t: 1
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_bf16 avx512_vnni
"""
SKYLAKE = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8175M\nflags\t\t: fpu avx avx2 avx512f avx512bw\n"
SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: avx512f amx_bf16 amx_tile amx_int8\n"


def test_parse_cpuinfo_takes_the_first_processors_fields():
    info = hardware.parse_cpuinfo(ZEN4)
    assert info["model name"] == "AMD EPYC 9R14" and info["processor"] == "0"
    assert "avx512_bf16" in hardware.cpu_flags(info)


def test_bfloat16_is_the_default_only_where_the_cpu_has_it():
    for text, native in ((ZEN4, True), (SAPPHIRE_RAPIDS, True), (SKYLAKE, False), ("", False)):
        info = hardware.parse_cpuinfo(text)
        assert hardware.native_bfloat16(info) is native, text
        assert hardware.default_precision(info) == ("bfloat16" if native else "float32")


def test_this_machine_is_read_once_and_agrees_with_itself(monkeypatch, tmp_path):
    info = hardware.cpuinfo()
    if hardware.CPUINFO.exists():
        assert "flags" in info
    assert hardware.default_precision() == hardware.default_precision(info)
    # Cached: a missing file later does not change the answer (nor raise).
    monkeypatch.setattr(hardware, "CPUINFO", tmp_path / "missing")
    assert hardware.cpuinfo() == info


def test_no_cpuinfo_means_float32(monkeypatch, tmp_path):
    hardware.cpuinfo.cache_clear()
    monkeypatch.setattr(hardware, "CPUINFO", tmp_path / "missing")
    try:
        assert hardware.cpuinfo() == {}
        assert hardware.default_precision() == "float32"
    finally:
        hardware.cpuinfo.cache_clear()


def test_usable_cores_are_the_cores_this_process_may_run_on():
    import os

    cores = hardware.usable_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert cores == len(os.sched_getaffinity(0))


# --- the container's share: cgroup v2, v1, or the machine ----------------------------------------------------------

MEMINFO = "MemTotal:       24000000 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\n"


def fake_tree(tmp_path, files: dict[str, str], cgroup_lines: str):
    root = tmp_path / "cgroup"
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    root.mkdir(exist_ok=True)
    self_cgroup = tmp_path / "self-cgroup"
    self_cgroup.write_text(cgroup_lines)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(MEMINFO)
    return root, self_cgroup, meminfo


def test_cgroup_v2_quota_and_memory_limit(tmp_path, monkeypatch):
    from mnist_core import hardware

    monkeypatch.setattr(hardware, "affinity_cores", lambda: 64)
    root, self_cgroup, meminfo = fake_tree(tmp_path, {
        "cgroup.controllers": "cpu memory",
        "app.slice/cpu.max": "150000 100000",
        "app.slice/memory.max": str(2_700 * 2**20),
        "app.slice/memory.current": str(900 * 2**20),
    }, "0::/app.slice\n")
    found = hardware.read_container(root, self_cgroup, meminfo)
    assert (found.source, found.cpus, found.threads) == ("cgroup v2", 1.5, 2)
    assert found.memory_limit == 2_700 * 2**20 and found.memory_available == 1_800 * 2**20


def test_cgroup_v2_without_limits_falls_back_to_the_machine(tmp_path, monkeypatch):
    from mnist_core import hardware

    monkeypatch.setattr(hardware, "affinity_cores", lambda: 2)
    root, self_cgroup, meminfo = fake_tree(tmp_path, {
        "cgroup.controllers": "cpu memory", "cpu.max": "max 100000", "memory.max": "max", "memory.current": "5",
    }, "0::/\n")
    found = hardware.read_container(root, self_cgroup, meminfo)
    assert (found.cpus, found.threads, found.memory_limit) == (2.0, 2, None)
    assert found.memory_total == 24_000_000 * 1024 and found.memory_available == 20_000_000 * 1024


def test_cgroup_v1_quota_and_memory_limit_from_the_process_own_cgroup(tmp_path, monkeypatch):
    from mnist_core import hardware

    monkeypatch.setattr(hardware, "affinity_cores", lambda: 8)
    root, self_cgroup, meminfo = fake_tree(tmp_path, {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "78000",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
        "memory/docker/abc/memory.limit_in_bytes": str(690 * 2**20),
        "memory/docker/abc/memory.usage_in_bytes": str(400 * 2**20),
        "memory/memory.limit_in_bytes": "9223372036854771712",  # the host's root: unlimited
    }, "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n")
    found = hardware.read_container(root, self_cgroup, meminfo)
    assert found.source == "cgroup v1" and found.cpus == pytest.approx(0.78) and found.threads == 1
    assert found.memory_limit == 690 * 2**20 and found.memory_available == 290 * 2**20


def test_cgroup_v1_unlimited_reads_as_no_limit_and_no_cgroup_at_all_as_the_machine(tmp_path, monkeypatch):
    from mnist_core import hardware

    monkeypatch.setattr(hardware, "affinity_cores", lambda: 4)
    root, self_cgroup, meminfo = fake_tree(tmp_path, {
        "cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000",
        "memory/memory.limit_in_bytes": "9223372036854771712", "memory/memory.usage_in_bytes": "123",
    }, "4:memory:/\n1:cpu:/\n")
    found = hardware.read_container(root, self_cgroup, meminfo)
    assert (found.source, found.cpus, found.memory_limit) == ("cgroup v1", 4.0, None)
    assert found.memory_used == (24_000_000 - 20_000_000) * 1024  # the machine's, without a limit

    nothing = hardware.read_container(tmp_path / "no-cgroups", tmp_path / "no-file", meminfo)
    assert (nothing.source, nothing.cpus, nothing.threads) == ("machine", 4.0, 4)


def test_garbage_in_cgroup_files_is_ignored_not_fatal(tmp_path, monkeypatch):
    from mnist_core import hardware

    monkeypatch.setattr(hardware, "affinity_cores", lambda: 2)
    root, self_cgroup, meminfo = fake_tree(tmp_path, {
        "cgroup.controllers": "", "cpu.max": "lots 0", "memory.max": "-5", "memory.current": "x",
    }, "garbage")
    found = hardware.read_container(root, self_cgroup, meminfo)
    assert (found.cpus, found.memory_limit) == (2.0, None)


def test_a_quota_sizes_tensorflows_threads_and_none_leaves_them_alone(monkeypatch):
    from mnist_core import hardware

    monkeypatch.setattr(hardware, "affinity_cores", lambda: 8)
    quota = hardware.Container(cpus=1.0, memory_limit=None, memory_used=None, memory_total=None, source="cgroup v2")
    assert hardware.tensorflow_thread_settings(quota) == {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    tiny = hardware.Container(cpus=0.078, memory_limit=None, memory_used=None, memory_total=None, source="cgroup v2")
    assert tiny.threads == 1  # never 0
    free = hardware.Container(cpus=8.0, memory_limit=None, memory_used=None, memory_total=None, source="machine")
    assert hardware.tensorflow_thread_settings(free) == {}
