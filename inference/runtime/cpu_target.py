"""Which CPU a compiled model's machine code is for: part of every compile-cache key (issue #15).

A MEF holds machine code for the CPU it was compiled for; MAX does not check this when loading, so a model
compiled on an AVX-512 machine and loaded on an AVX2-only one would die with SIGILL at its first run. The cache
key therefore names the CPU target, and CPU graphs are always compiled for a named x86-64 feature level
(`max.driver.set_virtual_cpu_target`), never for "whatever this host has": then a model in a cache shared
between machines, or shipped in the wheel, runs wherever its level's features are present.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
from pathlib import Path

#: Overrides the detected target (an LLVM CPU name such as `x86-64-v3`): for building portable models.
TARGET_ENV = "RSMT_STUDIO_CPU_TARGET"

#: The x86-64 feature levels we compile for, best first, with the /proc/cpuinfo flags each needs beyond the
#: previous level's (v3: AVX2, FMA, BMI, MOVBE, F16C, LZCNT(abm); v4: the AVX-512 F/BW/CD/DQ/VL set).
LEVEL_FLAGS: dict[str, frozenset[str]] = {
    "x86-64-v4": frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
    "x86-64-v3": frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "xsave", "abm"}),
    "x86-64-v2": frozenset({"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}),
}
LEVELS = tuple(LEVEL_FLAGS)  # best first


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first processor's feature flags (empty where /proc/cpuinfo is missing or has none)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def feature_level(flags: frozenset[str]) -> str | None:
    """The best x86-64 level whose features (and all lower levels') are all in `flags`, or None."""
    for i, level in enumerate(LEVELS):
        if all(LEVEL_FLAGS[lv] <= flags for lv in LEVELS[i:]):
            return level
    return None


@functools.cache
def host_target() -> str:
    """This machine's target: its x86-64 feature level, else `host-<hash of its CPU flags>` (other
    architectures, or x86 below v2), which only ever matches the same kind of CPU."""
    level = feature_level(cpu_flags()) if platform.machine() in ("x86_64", "AMD64") else None
    return level if level is not None else host_fingerprint()


@functools.cache
def host_fingerprint() -> str:
    """`host-<arch>-<hash of the CPU flags>`: code compiled for this host as it is matches only CPUs with the
    same features."""
    digest = hashlib.sha256(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:12]
    return f"host-{platform.machine()}-{digest}"


def cpu_target() -> str:
    """The target models are compiled for and looked up by: `$RSMT_STUDIO_CPU_TARGET`, else `host_target()`."""
    return os.environ.get(TARGET_ENV) or host_target()


def is_virtual(target: str) -> bool:
    """Whether `target` is an LLVM CPU name to pass to `set_virtual_cpu_target` (not a host fingerprint)."""
    return not target.startswith("host-")


def can_run(target: str, flags: frozenset[str] | None = None) -> bool:
    """Whether code for `target` runs on a CPU with `flags` (this machine's by default)."""
    flags = cpu_flags() if flags is None else flags
    if target in LEVEL_FLAGS:
        return all(LEVEL_FLAGS[lv] <= flags for lv in LEVELS[LEVELS.index(target):])
    return target == host_fingerprint()
