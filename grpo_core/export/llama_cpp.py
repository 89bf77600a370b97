"""llama.cpp through llama-cpp-python: whether it is installed, whether it runs on this CPU, k-quant quantization.

llama-cpp-python is a compiled build of llama.cpp. A build made for another CPU (a native build on a machine
with AVX-512 or AMX, copied or cached onto one without) does not raise: it dies with SIGILL, and takes the
process with it. So everything that executes llama.cpp's kernels for grpo-core's own work runs in a child
process first (:func:`llama_cpp_failure`) or only there (:func:`quantize_with_llama_cpp`): a bad build
becomes an error that names the fix, and the files already written stay.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from grpo_core.errors import ConfigError

REBUILD = ("rebuild it for this CPU: `CMAKE_ARGS=-DGGML_NATIVE=OFF pip install --no-cache-dir --force-reinstall "
           "--no-deps llama-cpp-python` (scripts/setup.sh does this)")

# Loads a GGUF and runs llama.cpp's matrix kernels on three tokens; argv[1] is the file.
_PROBE = (
    "import sys\n"
    "from llama_cpp import Llama\n"
    "m = Llama(model_path=sys.argv[1], n_ctx=16, n_batch=16, n_threads=1, verbose=False)\n"
    "m.eval([1, 2, 3])\n"
)

# llama_model_quantize(argv[1] -> argv[2], type argv[3]); prints its return code.
_QUANTIZE = (
    "import ctypes, sys\n"
    "import llama_cpp\n"
    "params = llama_cpp.llama_model_quantize_default_params()\n"
    "params.ftype = getattr(llama_cpp, 'LLAMA_FTYPE_MOSTLY_' + sys.argv[3].upper())\n"
    "sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(params)))\n"
)


def llama_cpp_available() -> bool:
    """Whether ``llama_cpp`` imports (it loads the library; its kernels have not run yet)."""
    try:
        import llama_cpp  # noqa: F401  # deferred: optional extra (llama-cpp)

        return True
    except Exception:  # noqa: BLE001
        return False


def require_llama_cpp(qtype: str):
    """The llama_cpp module, or a ConfigError saying what ``qtype`` needs."""
    try:
        import llama_cpp  # deferred: optional extra (llama-cpp)

        return llama_cpp
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(
            f"--quant {qtype} needs llama.cpp's quantizer: `pip install llama-cpp-python` (builds llama.cpp from source, "
            f"about 7 minutes of CPU on 2 cores; cmake and a C++ compiler needed). Import failed: {type(exc).__name__}: {exc}. "
            "f32, f16, bf16 and q8_0 need only the gguf package."
        ) from None


def _child_failure(proc: subprocess.CompletedProcess, doing: str) -> str:
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode)
        why = f"llama.cpp died with {sig.name} while {doing}"
        if sig == signal.SIGILL:
            return f"{why}: this llama-cpp-python was built for a CPU with instructions this one lacks; {REBUILD}"
        return f"{why}; {REBUILD}"
    tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
    return f"llama.cpp failed while {doing} (exit code {proc.returncode})" + (f":\n{tail}" if tail else "")


def llama_cpp_failure(path: str | Path, timeout: float = 600) -> str | None:
    """Run llama.cpp on the GGUF ``path`` in a child process: ``None`` when it ran, else what went wrong and the fix."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True, timeout=timeout)
    return None if proc.returncode == 0 else _child_failure(proc, f"loading and running {Path(path).name}")


def quantize_with_llama_cpp(src: str | Path, dst: str | Path, qtype: str, timeout: float = 3600) -> Path:
    """k-quants (q4_k_m, ...) through llama.cpp's own quantizer, in a child process (see the module's docstring)."""
    llama_cpp = require_llama_cpp(qtype)
    if getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{qtype.upper()}", None) is None:
        raise ConfigError(f"llama-cpp-python {getattr(llama_cpp, '__version__', '?')} has no quantization type {qtype!r}.")
    proc = subprocess.run([sys.executable, "-c", _QUANTIZE, str(src), str(dst), qtype], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        Path(dst).unlink(missing_ok=True)
        raise ConfigError(_child_failure(proc, f"quantizing {Path(src).name} to {qtype}"))
    return Path(dst)
