"""mnist_core.hardware: reading /proc/cpuinfo and choosing the default training precision."""

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


def _cgroup(tmp_path, v2: str | None = None, v1: tuple[str, str] | None = None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    if v2 is not None:
        (tmp_path / "cpu.max").write_text(v2 + "\n")
    if v1 is not None:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(v1[0] + "\n")
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(v1[1] + "\n")
    return tmp_path


@pytest.mark.parametrize(
    "v2, v1, quota",
    [
        ("max 100000", None, None),
        ("150000 100000", None, 1.5),
        (None, ("-1", "100000"), None),
        (None, ("100000", "100000"), 1.0),
        (None, None, None),
        ("garbage", None, None),
    ],
)
def test_cpu_quota_from_cgroup_v1_or_v2(tmp_path, v2, v1, quota):
    from mnist_core.hardware import cpu_quota

    assert cpu_quota(_cgroup(tmp_path, v2, v1)) == quota


def test_a_quota_limits_the_usable_cores_and_tensorflows_threads(tmp_path, monkeypatch):
    import os

    from mnist_core.hardware import tensorflow_thread_settings, usable_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert usable_cores(_cgroup(tmp_path / "none", v2="max 100000")) == 8
    assert tensorflow_thread_settings(tmp_path / "none") == {}
    one = _cgroup(tmp_path / "one", v1=("100000", "100000"))
    assert usable_cores(one) == 1
    assert tensorflow_thread_settings(one) == {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    assert usable_cores(_cgroup(tmp_path / "tiny", v2="10000 100000")) == 1  # never 0
    assert usable_cores(_cgroup(tmp_path / "big", v2="1600000 100000")) == 8  # never more than the affinity
