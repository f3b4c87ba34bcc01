"""Runs inside the target interpreter: what PyTorch says about itself.

Standard library only, Python 3.6 syntax. Prints `@@GPUDOCTOR@@ {json}` after each stage, so
a crash or a hang in a later stage still leaves what the earlier stages learned.
"""

import json
import os
import re
import sys
import warnings

MARKER = "@@GPUDOCTOR@@ "
OUT_FD = os.dup(1)
CUDA_LIB = re.compile(
    r"lib(cuda|cudart|cudnn[a-z_]*|cublas|cublasLt|nccl|nvrtc|cufft|cusolver|cusparse|nvidia-ml|nvJitLink)"
    r"[.\-_]"
)


def emit(data):
    line = "\n" + MARKER + json.dumps(data) + "\n"
    try:
        os.write(OUT_FD, line.encode("utf-8"))
    except OSError:
        pass


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (OSError, ValueError):
        return ""


def distribution(wanted):
    """The first distribution named `wanted` on sys.path, read from its metadata, without importing."""
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for folder in names:
            if not folder.endswith((".dist-info", ".egg-info")):
                continue
            if canonical(folder.split("-")[0].rsplit(".", 1)[0]) != wanted:
                continue
            path = os.path.join(entry or ".", folder)
            meta_file = path
            if os.path.isdir(path):
                meta_file = os.path.join(path, "METADATA" if folder.endswith(".dist-info") else "PKG-INFO")
            meta = read_text(meta_file)
            version = re.search(r"^Version:\s*(\S+)", meta, re.MULTILINE)
            installer = read_text(os.path.join(path, "INSTALLER")).strip() if os.path.isdir(path) else ""
            return {
                "version": version.group(1) if version else None,
                "installer": installer or None,
                "path": path,
            }
    return None


def conda_records(names):
    folder = os.path.join(sys.prefix, "conda-meta")
    try:
        files = sorted(os.listdir(folder))
    except OSError:
        return {}
    found = {}
    for file_name in files:
        if not file_name.endswith(".json") or not any(file_name.startswith(n + "-") for n in names):
            continue
        try:
            with open(os.path.join(folder, file_name), encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("name") in names:
            found[record["name"]] = {
                "version": str(record.get("version", "")),
                "build": str(record.get("build", record.get("build_string", ""))),
                "channel": str(record.get("channel", "")),
            }
    return found


def loaded_libraries():
    paths = []
    for line in read_text("/proc/self/maps").splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/") and CUDA_LIB.search(os.path.basename(parts[5])):
            if parts[5] not in paths:
                paths.append(parts[5])
    return paths


def describe_error(exc):
    message = str(exc).strip()
    return "%s: %s" % (type(exc).__name__, message) if message else type(exc).__name__


def main():
    data = {"stage": "metadata", "installed": False, "imported": False}
    dist = distribution("torch")
    conda = conda_records(("pytorch", "cpuonly"))
    if dist is not None:
        data["installed"] = True
        data["dist"] = dist
    if "pytorch" in conda:
        data["installed"] = True
        data["conda"] = conda["pytorch"]
    data["cpuonly"] = "cpuonly" in conda
    emit(data)
    if not data["installed"]:
        return

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            import torch
        except (Exception, SystemExit) as exc:
            data["import_error"] = describe_error(exc)
            data["warnings"] = [str(w.message) for w in caught]
            emit(data)
            return
        data["stage"] = "imported"
        data["imported"] = True
        data["version"] = str(getattr(torch, "__version__", "")) or None
        data["module_path"] = getattr(torch, "__file__", None)
        version = getattr(torch, "version", None)
        data["cuda_version"] = getattr(version, "cuda", None)
        data["hip_version"] = getattr(version, "hip", None)
        data["warnings"] = [str(w.message) for w in caught]
        emit(data)

        try:
            data["cudnn_version"] = torch.backends.cudnn.version()
        except Exception as exc:
            data["cudnn_error"] = describe_error(exc)
        try:
            data["arch_list"] = [str(a) for a in torch.cuda.get_arch_list()]
        except Exception as exc:
            data["cuda_error"] = describe_error(exc)
        try:
            data["cuda_available"] = bool(torch.cuda.is_available())
            data["device_count"] = int(torch.cuda.device_count())
            devices = []
            if data["cuda_available"]:
                for index in range(data["device_count"]):
                    major, minor = torch.cuda.get_device_capability(index)
                    devices.append(
                        {
                            "index": index,
                            "name": str(torch.cuda.get_device_name(index)),
                            "capability": "%d.%d" % (major, minor),
                        }
                    )
            data["devices"] = devices
        except Exception as exc:
            data["cuda_error"] = describe_error(exc)
        data["warnings"] = [str(w.message) for w in caught]
    data["loaded_libraries"] = loaded_libraries()
    data["stage"] = "done"
    emit(data)


main()
