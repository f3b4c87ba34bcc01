"""Runs inside the target interpreter: what JAX says about itself.

Standard library only, Python 3.6 syntax. Prints `@@GPUDOCTOR@@ {json}` after each stage, so
a crash or a hang in a later stage still leaves what the earlier stages learned.
"""

import json
import logging
import os
import re
import sys
import warnings

MARKER = "@@GPUDOCTOR@@ "
OUT_FD = os.dup(1)
PLUGIN = re.compile(r"^jax-(cuda|rocm)\d*-(plugin|pjrt)$")
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


def distributions():
    """Versions of jax, jaxlib and the CUDA/ROCm plugins on sys.path (first one wins), without importing."""
    found = {}
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for folder in names:
            if not folder.endswith((".dist-info", ".egg-info")):
                continue
            name = canonical(folder.split("-")[0].rsplit(".", 1)[0])
            if name in found or not (name in ("jax", "jaxlib") or PLUGIN.match(name)):
                continue
            path = os.path.join(entry or ".", folder)
            meta_file = path
            if os.path.isdir(path):
                meta_file = os.path.join(path, "METADATA" if folder.endswith(".dist-info") else "PKG-INFO")
            version = re.search(r"^Version:\s*(\S+)", read_text(meta_file), re.MULTILINE)
            found[name] = version.group(1) if version else ""
    return found


def conda_jaxlib():
    folder = os.path.join(sys.prefix, "conda-meta")
    try:
        files = sorted(os.listdir(folder))
    except OSError:
        return None
    for file_name in files:
        if not (file_name.startswith("jaxlib-") and file_name.endswith(".json")):
            continue
        try:
            with open(os.path.join(folder, file_name), encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("name") == "jaxlib":
            return {"build": str(record.get("build", "")), "channel": str(record.get("channel", ""))}
    return None


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


class Recorder(logging.Handler):
    """Keeps JAX's log lines: warnings from anyone, and the backend messages it logs at INFO."""

    def __init__(self):
        logging.Handler.__init__(self, logging.INFO)
        self.lines = []

    def emit(self, record):
        if record.levelno >= logging.WARNING or record.name.startswith("jax._src.xla_bridge"):
            try:
                self.lines.append(record.getMessage())
            except Exception:
                self.lines.append(str(record.msg))


def main():
    dists = distributions()
    data = {
        "stage": "metadata",
        "installed": "jax" in dists or "jaxlib" in dists,
        "imported": False,
        "jax_version": dists.pop("jax", None),
        "jaxlib_version": dists.pop("jaxlib", None),
        "plugins": dists,
        "conda_jaxlib": conda_jaxlib(),
    }
    emit(data)
    if not data["installed"]:
        return

    recorder = Recorder()
    logging.getLogger().addHandler(recorder)
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.INFO)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        def messages():
            return [str(w.message) for w in caught] + recorder.lines

        try:
            import jax
        except (Exception, SystemExit) as exc:
            data["import_error"] = describe_error(exc)
            data["warnings"] = messages()
            emit(data)
            return
        data["stage"] = "imported"
        data["imported"] = True
        data["module_path"] = getattr(jax, "__file__", None)
        data["jax_version"] = str(getattr(jax, "__version__", "")) or data["jax_version"]
        try:
            import jaxlib.version

            data["jaxlib_version"] = str(jaxlib.version.__version__)
        except Exception as exc:
            data["jaxlib_error"] = describe_error(exc)
        data["warnings"] = messages()
        emit(data)

        try:
            data["devices"] = ["%s:%s" % (d.platform, d.id) for d in jax.devices()]
            data["default_backend"] = str(jax.default_backend())
        except Exception as exc:
            data["backend_error"] = describe_error(exc)
        try:
            from jax._src import xla_bridge

            errors = getattr(xla_bridge, "_backend_errors", None) or {}
            data["backend_errors"] = {str(k): str(v) for k, v in errors.items()}
        except Exception as exc:
            data["backend_errors_error"] = describe_error(exc)
        data["warnings"] = messages()
    data["loaded_libraries"] = loaded_libraries()
    data["stage"] = "done"
    emit(data)


main()
