"""Runs inside the target interpreter: who it is and which GPU-relevant distributions it has.

Standard library only, Python 3.6 syntax. Prints one line `@@GPUDOCTOR@@ {json}` at the end.
"""

import os
import re
import struct
import sys

from _prelude import canonical, emit, installed_distributions

EXACT = {
    "tensorflow",
    "tensorflow-gpu",
    "tensorflow-cpu",
    "tensorflow-intel",
    "tensorflow-macos",
    "tensorflow-metal",
    "tensorflow-cpu-aws",
    "tensorflow-rocm",
    "tensorflow-directml-plugin",
    "intel-tensorflow",
    "tf-nightly",
    "tf-nightly-gpu",
    "tf-nightly-cpu",
    "tf-keras",
    "keras",
    "torch",
    "torchvision",
    "torchaudio",
    "pytorch-triton",
    "triton",
    "jax",
    "jaxlib",
    "numpy",
}
PREFIXES = ("nvidia-", "tensorrt", "cupy", "jax-cuda", "jax-rocm")
FRAMEWORKS = ("tensorflow", "torch", "jax")
STUB_NAME = "tensorflow-gpu"
MAX_FIELD = 500


NOT_CUDA = {"nvidia-ml-py", "nvidia-ml-py3", "pynvml"}  # NVML bindings, not CUDA library wheels


def wanted(name):
    return name not in NOT_CUDA and (name in EXACT or name.startswith(PREFIXES))


def names_stub(requirement):
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return bool(match) and canonical(match.group(1)) == STUB_NAME


def clip(text):
    text = str(text)
    return text if len(text) <= MAX_FIELD else text[:MAX_FIELD] + "..."


def origin_of(executable, prefix, base_prefix, is_venv):
    places = [executable, prefix, base_prefix, getattr(sys, "_base_executable", "") or ""]
    if any("WindowsApps" in p or "PythonSoftwareFoundation.Python." in p for p in places):
        return "microsoft-store"
    if os.path.isdir(os.path.join(prefix, "conda-meta")):
        return "conda"
    if is_venv:
        return "venv"
    if any(re.search(r"[\\/]\.?pyenv[\\/]", p) for p in places):
        return "pyenv"
    lowered = prefix.replace("\\", "/").lower()
    system_roots = ("/usr", "/library/frameworks/python.framework", "/system/library", "/opt/homebrew")
    if lowered.startswith(system_roots) or re.match(r"^[a-z]:/(python\d+|program files)", lowered):
        return "system"
    if "/appdata/local/programs/python/" in lowered:
        return "system"
    return "other"


def site_dirs():
    found = []
    try:
        import site

        candidates = list(getattr(site, "getsitepackages", list)())
        if getattr(site, "ENABLE_USER_SITE", False):
            candidates.append(site.getusersitepackages())
    except Exception:
        candidates = []
    candidates += [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    for path in candidates:
        if path and os.path.isdir(path) and path not in found:
            found.append(path)
    return found


def distributions(broken):
    seen = {}
    for dist in installed_distributions(broken=broken):
        key = dist["name"]
        requires = [clip(r) for r in dist["requires"]]
        if not (wanted(key) or any(names_stub(r) for r in requires)):
            continue
        seen[key] = {
            "name": key,
            "version": clip(dist["version"]),
            "requires": requires,
            "installer": dist["installer"],
            "location": dist["location"],
        }
    return sorted(seen.values(), key=lambda d: d["name"])


def shadowing(site_packages):
    """Framework names that a file or folder in the working directory would shadow for the user's scripts."""
    cwd = os.getcwd()
    if any(os.path.normcase(os.path.abspath(p)) == os.path.normcase(cwd) for p in site_packages):
        return []
    found = []
    try:
        from importlib.machinery import PathFinder
    except ImportError:
        return found
    search = [cwd] + sys.path  # what the user's own `python script.py` or `python -c` in this folder sees
    for name in FRAMEWORKS:
        module_file = os.path.join(cwd, name + ".py")
        folder = os.path.join(cwd, name)
        if not (os.path.isfile(module_file) or os.path.isdir(folder)):
            continue
        try:
            spec = PathFinder.find_spec(name, search)
        except Exception:
            spec = None
        if spec is None:
            continue
        origin = spec.origin if spec.origin not in (None, "namespace") else None
        places = [origin] if origin else list(spec.submodule_search_locations or [])
        for place in places:
            here = os.path.normcase(os.path.abspath(place))
            if here == os.path.normcase(module_file):
                found.append(name + ".py")
                break
            if here == os.path.normcase(folder) or here.startswith(os.path.normcase(folder) + os.sep):
                found.append(name + "/")
                break
    return found


def main():
    broken = []
    prefix = sys.prefix
    base_prefix = getattr(sys, "base_prefix", getattr(sys, "real_prefix", prefix))
    is_venv = prefix != base_prefix or hasattr(sys, "real_prefix")
    executable = sys.executable or ""
    sites = site_dirs()
    result = {
        "executable": executable,
        "version": "%d.%d.%d" % sys.version_info[:3],
        "implementation": getattr(getattr(sys, "implementation", None), "name", "cpython"),
        "prefix": prefix,
        "base_prefix": base_prefix,
        "is_venv": is_venv,
        "origin": origin_of(executable, prefix, base_prefix, is_venv),
        "bits": struct.calcsize("P") * 8,
        "site_packages": sites,
        "distributions": distributions(broken),
        "shadowing": shadowing(sites),
        "unreadable_metadata": broken[:50],
    }
    emit(result)


main()
