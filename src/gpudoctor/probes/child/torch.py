"""Runs inside the target interpreter: what PyTorch says about itself.

Standard library only, Python 3.6 syntax. Prints `@@GPUDOCTOR@@ {json}` after each stage, so
a crash or a hang in a later stage still leaves what the earlier stages learned.
"""

import warnings

from _prelude import conda_records, describe_error, emit, installed_distributions, loaded_libraries


def distribution(wanted):
    """The first distribution named `wanted` on sys.path, read from its metadata, without importing."""
    for dist in installed_distributions(keep=lambda name: name == wanted):
        return {"version": dist["version"] or None, "installer": dist["installer"], "path": dist["path"]}
    return None


def device_identity(torch, index):
    """Which physical GPU a torch device is: its UUID and PCI address (torch 2.x properties)."""
    found = {}
    try:
        props = torch.cuda.get_device_properties(index)
    except Exception:
        return found
    uuid = getattr(props, "uuid", None)
    if uuid is not None:
        text = str(uuid)
        found["uuid"] = text if text.startswith(("GPU-", "MIG-")) else "GPU-" + text
    parts = [getattr(props, name, None) for name in ("pci_domain_id", "pci_bus_id", "pci_device_id")]
    if all(isinstance(part, int) for part in parts):
        found["pci_bus_id"] = "%04x:%02x:%02x.0" % tuple(parts)
    return found


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
                    device = {
                        "index": index,
                        "name": str(torch.cuda.get_device_name(index)),
                        "capability": "%d.%d" % (major, minor),
                    }
                    device.update(device_identity(torch, index))
                    devices.append(device)
            data["devices"] = devices
        except Exception as exc:
            data["cuda_error"] = describe_error(exc)
        mps = getattr(getattr(torch, "backends", None), "mps", None)  # env (#10.10): Apple's Metal route
        if mps is not None:
            try:
                data["mps_built"] = bool(mps.is_built())
                data["mps_available"] = bool(mps.is_available())
            except Exception as exc:
                data["mps_error"] = describe_error(exc)
        data["warnings"] = [str(w.message) for w in caught]
    data["loaded_libraries"] = loaded_libraries()
    data["stage"] = "done"
    emit(data)


main()
