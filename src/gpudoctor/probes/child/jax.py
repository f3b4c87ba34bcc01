"""Runs inside the target interpreter: what JAX says about itself.

Standard library only, Python 3.6 syntax. Prints `@@GPUDOCTOR@@ {json}` after each stage, so
a crash or a hang in a later stage still leaves what the earlier stages learned.
"""

import logging
import re
import traceback
import warnings

from _prelude import conda_records, describe_error, emit, installed_distributions, loaded_libraries

PLUGIN = re.compile(r"^jax-(cuda|rocm)\d*-(plugin|pjrt)$")


def wanted(name):
    return name in ("jax", "jaxlib") or bool(PLUGIN.match(name))


def distributions():
    """Versions of jax, jaxlib and the CUDA/ROCm plugins on sys.path (first one wins), without importing."""
    return {d["name"]: d["version"] for d in installed_distributions(keep=wanted)}


def conda_jaxlib():
    record = conda_records(("jaxlib",)).get("jaxlib")
    return {"build": record["build"], "channel": record["channel"]} if record else None


class Recorder(logging.Handler):
    """Keeps JAX's log lines: warnings from anyone, and the backend messages it logs at INFO."""

    def __init__(self):
        logging.Handler.__init__(self, logging.INFO)
        self.lines = []

    def emit(self, record):
        if record.levelno >= logging.WARNING or record.name.startswith("jax._src.xla_bridge"):
            try:
                line = record.getMessage()
            except Exception:
                line = str(record.msg)
            if record.exc_info and record.exc_info[1] is not None:
                # JAX attaches the real reason (a plugin's failed initialize(), cuInit's error) as the
                # record's exception, not in the message: keep it.
                reason = traceback.format_exception_only(record.exc_info[0], record.exc_info[1])
                line += ": " + "".join(reason).strip()[:2000]
            self.lines.append(line)


def gpu_identity(device):
    """What a JAX GPU device says about itself: its kind (CUDA's device name) and, from jaxlib 0.4.2x, its
    compute_capability attribute. JAX exposes no PCI address or UUID."""
    found = {"index": device.id}
    kind = getattr(device, "device_kind", None)
    if isinstance(kind, str):
        found["name"] = kind
    try:
        capability = getattr(device, "compute_capability", None)
    except Exception:
        capability = None
    if isinstance(capability, str):
        found["compute_capability"] = capability
    ordinal = getattr(device, "local_hardware_id", None)
    if isinstance(ordinal, int):
        found["cuda_ordinal"] = ordinal
    return found


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
            found = jax.devices()
            data["devices"] = ["%s:%s" % (d.platform, d.id) for d in found]
            data["gpu_devices"] = [gpu_identity(d) for d in found if d.platform in ("gpu", "cuda", "rocm")]
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
