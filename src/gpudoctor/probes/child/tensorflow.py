"""Runs inside the target interpreter: import TensorFlow and report what it says about itself.

Standard library only, Python 3.6 syntax. Prints a first `@@GPUDOCTOR@@ {json}` line with what the
package metadata says *before* importing, so a hang or a crash during the import still leaves
that much behind; the last such line is the full result.
"""

import traceback

from _prelude import emit, installed_distributions, loaded_libraries

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
MAX_ERROR = 4000


def attempt(call, default):
    try:
        return call()
    except Exception:
        return default


def installed_tensorflow():
    return {
        d["name"]: d["version"] for d in installed_distributions(keep=lambda name: name in TF_DISTRIBUTIONS)
    }


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


def create_devices(tf):
    """Create TensorFlow's GPU devices (memory grown on demand), so that it logs which physical GPU each
    one is: "Created device .../device:GPU:0 with ... -> device: 0, name: ..., pci bus id: ..."."""
    config = getattr(tf, "config", None)
    experimental = getattr(config, "experimental", None)
    grow = getattr(experimental, "set_memory_growth", None)
    listed = getattr(config, "list_physical_devices", None)
    if grow is not None and listed is not None:
        for device in attempt(lambda: listed("GPU"), []):
            attempt(lambda: grow(device, True), None)
    lister = getattr(config, "list_logical_devices", None)
    if lister is None:
        return None
    try:
        return [d.name for d in lister("GPU")]
    except Exception as exc:
        return "%s: %s" % (type(exc).__name__, exc)


def main():
    dists = installed_tensorflow()
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
    if result["gpus"]:
        result["stage"] = "devices"
        emit(result)  # creating the devices starts CUDA on every GPU: keep what is known if that dies
        created = create_devices(tf)
        if isinstance(created, str):
            result["create_devices_error"] = created[:MAX_ERROR]
    result["loaded_libraries"] = loaded_libraries()
    result["stage"] = "done"
    emit(result)


main()
