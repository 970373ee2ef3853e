"""Where and with what a run was measured: versions, host, CPU and GPUs."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from pathlib import Path

import harness
from harness.config import ExperimentConfig
from harness.contract.manifest import Host, RunManifest
from harness.engines import installed
from harness.engines.registry import engine_type
from harness.run.calibration import calibrate
from harness.store.run_store import now_iso

# The environment variables recorded in run.json: an allowlist of those that change what is
# measured. Never the whole environment: it holds tokens and keys (HF_TOKEN, VLLM_API_KEY...).
ENVIRONMENT = (
    "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NVIDIA_VISIBLE_DEVICES",
    "PYTORCH_CUDA_ALLOC_CONF", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM",
    "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "VLLM_ATTENTION_BACKEND", "VLLM_USE_V1",
    "VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_OMP_THREADS_BIND", "VLLM_TARGET_DEVICE",
    "VLLM_LOGGING_LEVEL",
)


def environment() -> dict[str, str]:
    """The allowlisted variables that are set, and nothing else of the environment."""
    return {name: os.environ[name] for name in ENVIRONMENT if name in os.environ}


def git_sha() -> str | None:
    source = Path(harness.__file__).resolve().parent.parent
    if not (source / ".git").exists():
        return None
    try:
        result = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def gpus() -> dict:
    """GPU names through NVML, or why there are none."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as err:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return {"available": False, "reason": f"NVML unavailable: {err}", "devices": []}
    try:
        devices = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            devices.append({"index": i, "name": name if isinstance(name, str) else name.decode(),
                            "uuid": _text(pynvml.nvmlDeviceGetUUID(handle))})
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        return {"available": bool(devices), "driver": driver, "devices": devices,
                **({} if devices else {"reason": "NVML reports no GPU"})}
    finally:
        pynvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode()


def host() -> dict:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": memory_gib(),
        "gpus": gpus(),
        "environment": environment(),
        "speed": calibrate(),
    }


def run_manifest(config: ExperimentConfig, run_name: str, config_path: Path) -> RunManifest:
    """run.json of a new run: the config, its hash, and where and with what it is measured."""
    engine = engine_type(config)
    package = (installed.package(config.engine.python, engine.distributions)
               if engine.distributions else None)
    return RunManifest(
        run=run_name, config_file=str(config_path), config=config, config_hash=config.hash(),
        harness_version=harness.__version__, harness_git_sha=git_sha(), engine_package=package,
        host=Host(**host()), started_at=now_iso())
