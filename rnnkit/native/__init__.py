"""Native kernels: C code for the per-step element-wise work of cells PyTorch has no fused kernel for.

The C source ships with the package and is compiled on first use by the machine's C compiler
(``$CC``, else ``cc``) for the machine it runs on (``-march=native``), into rnnkit's own cache
directory (``$RNNKIT_CACHE``, else ``$XDG_CACHE_HOME/rnnkit``, else ``~/.cache/rnnkit``). The build
is keyed by a hash of the source, the compiler command and the CPU's flags, so a cache shared
between machines never hands one CPU code built for another. Without a compiler, or with
``RNNKIT_NATIVE=0``, `library()` returns None and the cells run their PyTorch step path: same
results, slower. Nothing here is needed for correctness.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCES = ("kernels.c", "common.h", "lnlstm.c", "bnlstm.c", "scan.c", "gfrnn.c")
# -fno-trapping-math lets the compiler vectorise the exp; -fassociative-math (with -fno-signed-zeros)
# the reductions. NaN and infinity keep their meaning (no -ffinite-math-only).
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fassociative-math", "-fno-signed-zeros",
         "-fPIC", "-shared", "-std=gnu11"]
# OpenMP splits each kernel's rows among PyTorch's threads. The library links the OpenMP runtime by
# its usual name (libgomp.so.1), which resolves to the one PyTorch has already loaded, so both use
# one pool of threads. A compiler without OpenMP builds the kernels single-threaded instead.
OPENMP = ["-fopenmp"]


def _cpu_signature() -> str:
    """The CPU's model and instruction-set flags (Linux), or what Python knows of it elsewhere."""
    try:
        lines = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    except OSError:
        return platform.processor() + platform.machine()
    wanted = [line for line in lines if line.startswith(("model name", "flags", "Features"))]
    return "\n".join(sorted(set(wanted)))


def cache_dir() -> Path:
    if os.environ.get("RNNKIT_CACHE"):
        return Path(os.environ["RNNKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rnnkit"


def _build(target: Path, compiler: str) -> bool:
    """Compile into a private temporary directory, then move into place in one rename, so two
    processes building at once (torchrun) never load a half-written file. With OpenMP if the
    compiler has it, else without."""
    here = Path(__file__).parent
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        out = Path(work) / target.name
        for extra in (OPENMP, []):
            try:
                done = subprocess.run([compiler, *FLAGS, *extra, str(here / "kernels.c"), "-o", str(out), "-lm"],
                                      capture_output=True, timeout=120)
            except (OSError, subprocess.TimeoutExpired):
                return False
            if done.returncode == 0 and out.exists():
                os.replace(out, target)
                return True
    return False


@functools.cache
def library() -> ctypes.CDLL | None:
    """The compiled kernels, built on first use; None where they cannot be (see the module doc)."""
    if os.environ.get("RNNKIT_NATIVE", "1") == "0":
        return None
    compiler = os.environ.get("CC") or "cc"
    if shutil.which(compiler) is None:
        return None
    here = Path(__file__).parent
    key = hashlib.sha256()
    for name in SOURCES:
        key.update((here / name).read_bytes())
    key.update(" ".join([compiler, *FLAGS, *OPENMP]).encode())
    key.update(_cpu_signature().encode())
    target = cache_dir() / "native" / f"kernels-{key.hexdigest()[:16]}.so"
    try:
        if not target.exists() and not _build(target, compiler):
            return None
        lib = ctypes.CDLL(str(target))
    except OSError:
        return None
    lib.native_set_threads.restype = None
    lib.native_set_threads.argtypes = [ctypes.c_int]
    # name: (size arguments, pointer arguments); sizes: (B, H), (R, W), (rows, H, blocks), (B, T, H, reverse),
    # (B, H, L, layer[, source stride])
    signatures = {"lnlstm_forward": (2, 14), "lnlstm_backward": (2, 20), "column_sums": (2, 5),
                  "layer_norm_rows_forward": (3, 6), "layer_norm_rows_backward": (3, 5), "bnlstm_forward": (2, 25),
                  "bnlstm_backward": (2, 24), "linear_recurrence": (4, 4), "gfrnn_forward": (4, 9),
                  "gfrnn_backward": (5, 13)}
    for name, (sizes, count) in signatures.items():
        for suffix in ("_f32", "_f64"):
            fn = getattr(lib, name + suffix)
            fn.restype = None
            fn.argtypes = [ctypes.c_ssize_t] * sizes + [ctypes.c_void_p] * count
    return lib
