"""Runs inside the target interpreter: import TensorFlow and report what it says about itself.

Standard library only, Python 3.6 syntax. Prints a first `@@GPUDOCTOR@@ {json}` line with what the
package metadata says *before* importing, so a hang or a crash during the import still leaves
that much behind; the last such line is the full result.
"""

import json
import os
import re
import sys
import traceback

MARKER = "@@GPUDOCTOR@@ "
TF_DISTRIBUTIONS = (
    "tensorflow",
    "tensorflow-gpu",
    "tensorflow-cpu",
    "tensorflow-intel",
    "tensorflow-macos",
    "tensorflow-cpu-aws",
    "tensorflow-rocm",
    "intel-tensorflow",
    "tf-nightly",
    "tf-nightly-gpu",
    "tf-nightly-cpu",
)
CUDA_LIBRARY = re.compile(
    r"lib(cudart|cudnn\w*|cublas\w*|cufft|curand|cusolver\w*|cusparse\w*|nccl|nvrtc\w*|cuda|nvidia-ml"
    r"|nvJitLink|cupti)\.so"
)
MAX_ERROR = 4000


def emit(result):
    sys.stdout.write("\n" + MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


def attempt(call, default):
    try:
        return call()
    except Exception:
        return default


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions():
    found = {}
    try:
        from importlib import metadata

        for dist in metadata.distributions():
            name = canonical(attempt(lambda: dist.metadata["Name"], "") or "")
            if name in TF_DISTRIBUTIONS and name not in found:
                found[name] = dist.version or ""
        return found
    except ImportError:
        pass
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        for folder in names:
            match = re.match(r"(.+?)-([^-]+)\.dist-info$", folder)
            if match and canonical(match.group(1)) in TF_DISTRIBUTIONS:
                found.setdefault(canonical(match.group(1)), match.group(2))
    return found


def build_info(tf):
    info = attempt(lambda: dict(tf.sysconfig.get_build_info()), None)
    if info is None:
        legacy = attempt(lambda: __import__("tensorflow.python.platform.build_info", fromlist=["x"]), None)
        keys = ("is_cuda_build", "is_rocm_build", "cuda_version_number", "cudnn_version_number")
        info = {key: getattr(legacy, key) for key in keys if hasattr(legacy, key)}
    if "is_cuda_build" not in info:
        built = attempt(lambda: bool(tf.test.is_built_with_cuda()), None)
        if built is not None:
            info["is_cuda_build"] = built
    return {
        "is_cuda_build": info.get("is_cuda_build"),
        "is_rocm_build": info.get("is_rocm_build"),
        "cuda_version": info.get("cuda_version", info.get("cuda_version_number")),
        "cudnn_version": info.get("cudnn_version", info.get("cudnn_version_number")),
        "cuda_compute_capabilities": [str(c) for c in info.get("cuda_compute_capabilities") or []],
    }


def list_gpus(tf):
    config = getattr(tf, "config", None)
    for lister in (
        getattr(config, "list_physical_devices", None),
        getattr(getattr(config, "experimental", None), "list_physical_devices", None),
    ):
        if lister is not None:
            return [d.name for d in lister("GPU")]
    from tensorflow.python.client import device_lib

    return [d.name for d in device_lib.list_local_devices() if d.device_type == "GPU"]


def loaded_libraries():
    if not sys.platform.startswith("linux"):
        return []
    paths = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                parts = line.split(None, 5)
                if len(parts) == 6:
                    path = parts[5].strip()
                    if CUDA_LIBRARY.search(os.path.basename(path)) and path not in paths:
                        paths.append(path)
    except OSError:
        pass
    return paths


def main():
    dists = installed_distributions()
    result = {"stage": "metadata", "installed": bool(dists), "distributions": dists}
    emit(result)
    if not dists:
        return
    try:
        import tensorflow as tf
    except BaseException as exc:
        lines = traceback.format_exception_only(type(exc), exc)
        result.update(stage="done", imported=False, import_error="".join(lines).strip()[-MAX_ERROR:])
        emit(result)
        return
    result.update(
        stage="imported",
        imported=True,
        version=str(getattr(tf, "__version__", "") or getattr(getattr(tf, "version", None), "VERSION", "")),
        module_path=getattr(tf, "__file__", None),
    )
    emit(result)
    try:
        result.update(build_info(tf))
    except Exception as exc:
        result["build_info_error"] = "%s: %s" % (type(exc).__name__, exc)
    try:
        result["gpus"] = list_gpus(tf)
    except Exception as exc:
        result["gpus"] = []
        result["list_devices_error"] = ("%s: %s" % (type(exc).__name__, exc))[:MAX_ERROR]
    result["loaded_libraries"] = loaded_libraries()
    result["stage"] = "done"
    emit(result)


main()
