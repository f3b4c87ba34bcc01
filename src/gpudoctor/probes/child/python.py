"""Runs inside the target interpreter: who it is and which GPU-relevant distributions it has.

Standard library only, Python 3.6 syntax. Prints one line `@@GPUDOCTOR@@ {json}` at the end.
"""

import json
import os
import re
import struct
import sys

from _prelude import CUDA_LIBRARY, canonical, emit, installed_distributions, read_text

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
    "tensorflow-estimator",
    "torch",
    "torchvision",
    "torchaudio",
    "pytorch-triton",
    "triton",
    "jax",
    "jaxlib",
    "numpy",
    "protobuf",
    "ml-dtypes",
}
PREFIXES = ("nvidia-", "cuda-", "tensorrt", "cupy", "jax-cuda", "jax-rocm")
FRAMEWORKS = ("tensorflow", "torch", "jax")
STUB_NAME = "tensorflow-gpu"
MAX_FIELD = 500
# Distributions whose RECORD is read: the CUDA library wheels and the frameworks that bundle libraries.
RECORD_PREFIXES = ("nvidia-", "cuda-", "tensorflow", "tf-nightly", "jax-cuda", "jax-rocm", "tensorrt", "cupy")
RECORD_EXACT = {"torch", "jax", "jaxlib", "triton", "pytorch-triton", "intel-tensorflow"}
FRAMEWORK_MODULES = ("tensorflow", "torch", "jax", "jaxlib")
TOOL_FILES = {"ptxas", "ptxas.exe", "nvcc", "nvcc.exe", "nvlink", "fatbinary"}
MAX_SHARED = 400
MAX_LIBRARIES = 600
CUDA_DLL = r"^(cudart|cudnn|cublas|cufft|curand|cusolver|cusparse|nvrtc|nvjitlink|cupti)\w*\.dll$"
HASH_BUDGET = 64 << 20  # bytes hashed at most to tell two owners of one file apart
MAX_RECORD = 1 << 25  # bytes read from one RECORD (torch's is ~2 MB)
MAX_ROOTS = 24
TOOL_WHEELS = ("nvidia-", "cuda-", "triton", "pytorch-triton")  # wheels whose ptxas/nvcc/libdevice are listed
WRAPPED_TOOL = re.compile(r"(/[^\s'\"]+/bin/(?:ptxas|nvcc))(?![\w.-])")
XLA_DATA_DIR = re.compile(r"--xla_gpu_cuda_data_dir=(\"[^\"]*\"|'[^']*'|[^\s]+)")


NOT_CUDA = {"nvidia-ml-py", "nvidia-ml-py3", "pynvml"}  # NVML bindings, not CUDA library wheels


def wanted(name):
    return name not in NOT_CUDA and (name in EXACT or name.startswith(PREFIXES))


def names_stub(requirement):
    if "tensorflow" not in requirement.lower():
        return False
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


def wants_record(name):
    return name.startswith(RECORD_PREFIXES) or name in RECORD_EXACT


def distributions(broken):
    seen = {}
    folders = {}
    for dist in installed_distributions(broken=broken, installer_for=wanted):
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
        if wants_record(key) and os.path.isdir(dist["path"]) and dist["path"].endswith(".dist-info"):
            folders[key] = dist["path"]
    add_shadowed(seen)
    return sorted(seen.values(), key=lambda d: d["name"]), folders


def add_shadowed(seen):
    """Copies of a surveyed distribution further down sys.path (a user-site torch under a venv's), by folder name."""
    first = {}
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        for folder in names:
            if not folder.endswith(".dist-info"):
                continue
            name, _, version = folder[: -len(".dist-info")].partition("-")
            key = canonical(name)
            if key not in seen:
                continue
            if key not in first:
                first[key] = entry
            elif first[key] != entry:
                copies = seen[key].setdefault("shadowed", [])
                if len(copies) < 5:
                    copies.append({"version": clip(version), "location": entry})


def read_record(folder, location):
    """RECORD rows as {absolute path: (hash, size)}, without the dist-info folder's own files."""
    text = read_text(os.path.join(folder, "RECORD"), MAX_RECORD)
    if not text:
        return {}
    rows = {}
    own = os.path.basename(folder) + "/"
    for line in text.splitlines():
        # A path may itself contain commas (csv quoting); hash and size never do.
        parts = line.rsplit(",", 2)
        if len(parts) != 3 or not parts[0]:
            continue
        relative = parts[0]
        if relative.startswith('"') and relative.endswith('"'):
            relative = relative[1:-1].replace('""', '"')
        if relative.startswith(own) or "__pycache__" in relative:
            continue
        size = int(parts[2]) if parts[2].isdigit() else None
        path = os.path.normpath(os.path.join(location, relative))
        rows[path] = (parts[1] or None, size)
    return rows


def file_digest(path, budget):
    """sha256 of a file in RECORD's urlsafe-base64 form, or None when it is beyond the hashing budget."""
    import base64
    import hashlib

    try:
        size = os.path.getsize(path)
        if size > budget[0]:
            return None
        budget[0] -= size
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except (OSError, ValueError):
        return None
    return "sha256=" + base64.urlsafe_b64encode(digest.digest()).decode("ascii").rstrip("=")


def on_disk(path, owners, budget):
    """Which owners' RECORD entry the file on disk matches: by size when sizes tell them apart, else by hash."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return None, []
    candidates = [(name, row) for name, row in owners if row[1] == size] or [
        (name, row) for name, row in owners if row[1] is None
    ]
    if len(candidates) <= 1 or len({row[0] for _, row in candidates}) == 1:
        return size, [name for name, _ in candidates]
    digest = file_digest(path, budget)
    if digest is None:
        return size, [name for name, _ in candidates]
    return size, [name for name, row in candidates if row[0] == digest]


def library_like(path):
    base = os.path.basename(path).lower()
    return ".so" in base or base.endswith((".dll", ".dylib", ".pyd")) or os.sep + "bin" + os.sep in path


def shared_files(records):
    """Paths that two or more distributions' RECORD list: the same file written twice."""
    owners = {}
    for name in sorted(records):
        for path, row in records[name].items():
            owners.setdefault(path, []).append((name, row))
    shared = [(path, rows) for path, rows in owners.items() if len(rows) > 1]
    shared.sort(key=lambda item: (not library_like(item[0]), item[0]))
    budget = [HASH_BUDGET]
    found = []
    for path, rows in shared[:MAX_SHARED]:
        size, matches = on_disk(path, rows, budget)
        found.append(
            {
                "path": path,
                "owners": [
                    {"name": name, "hash": h, "size": s, "matches": name in matches} for name, (h, s) in rows
                ],
                "disk_size": size,
            }
        )
    return found, len(shared)


def wheel_tools(records):
    """Compilers and device libraries the CUDA wheels ship (ptxas, nvcc, libdevice), where RECORD puts them."""
    found = []
    for name in sorted(records):
        if not name.startswith(TOOL_WHEELS):
            continue
        for path in records[name]:
            base = os.path.basename(path).lower()
            if base in TOOL_FILES or (base.startswith("libdevice") and base.endswith(".bc")):
                found.append(
                    {"name": base, "path": path, "distribution": name, "exists": os.path.exists(path)}
                )
    return found[:50]


def wheel_libraries(records):
    """Every CUDA library a wheel's RECORD lists (libcudnn.so.9, libcublas.so.13), with the wheel that wrote it."""
    found = []
    for name in sorted(records):
        for path in records[name]:
            base = os.path.basename(path)
            library = ".so" in base or base.lower().endswith((".dll", ".dylib"))
            if library and (CUDA_LIBRARY.match(base) or re.match(CUDA_DLL, base.lower())):
                found.append(
                    {"name": base, "path": path, "distribution": name, "exists": os.path.exists(path)}
                )
    return found[:MAX_LIBRARIES]


def is_program(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def toolkit_version(root):
    """The CUDA version a toolkit folder's version.json states (nvcc's, else the toolkit's)."""
    text = read_text(os.path.join(root, "version.json"), 1 << 16)
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return None
    for key in ("cuda_nvcc", "cuda"):
        entry = data.get(key) if isinstance(data, dict) else None
        version = entry.get("version") if isinstance(entry, dict) else None
        if isinstance(version, str) and re.match(r"^\d+\.\d+", version):
            return clip(version)
    return None


def real_program(path):
    """A program's real file, through symlinks and one-line wrapper scripts (`exec /usr/local/cuda/bin/nvcc`)."""
    real = os.path.realpath(path)
    head = read_text(real, 4096)
    match = WRAPPED_TOOL.search(head) if head.startswith("#!") else None
    return os.path.realpath(match.group(1)) if match else real


def on_path(name):
    """The first `name` on PATH, skipping empty entries (which would mean the working directory)."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if folder and folder != ".":
            candidate = os.path.join(folder, name)
            if is_program(candidate):
                return candidate
    return None


def cuda_roots():
    """Every folder XLA (TensorFlow, JAX) or PyTorch's extension builder searches for ptxas, nvcc and
    libdevice at run time, named as this environment names it; which one wins is the rules' question."""
    exe = ".exe" if os.name == "nt" else ""
    found = []
    seen = set()

    def add(via, root, tool=None):
        if not root or len(found) >= MAX_ROOTS:
            return
        path = os.path.normpath(os.path.abspath(root))
        if (via, path) in seen:
            return
        seen.add((via, path))
        real = os.path.dirname(os.path.dirname(real_program(tool))) if tool else os.path.realpath(path)
        entry = {
            "via": via,
            "path": path,
            "ptxas": is_program(os.path.join(path, "bin", "ptxas" + exe)),
            "nvcc": is_program(os.path.join(path, "bin", "nvcc" + exe)),
            "libdevice": os.path.isfile(os.path.join(path, "nvvm", "libdevice", "libdevice.10.bc")),
            "version": toolkit_version(path) or (toolkit_version(real) if real != path else None),
        }
        if real != path:
            entry["real"] = real
        if tool:
            entry["tool"] = tool
        found.append(entry)

    match = XLA_DATA_DIR.search(os.environ.get("XLA_FLAGS", ""))
    if match:
        add("XLA_FLAGS", match.group(1).strip("'\""))
    for variable in ("CUDA_ROOT", "CUDA_HOME", "CUDA_PATH"):
        add(variable, os.environ.get(variable))
    for tool, via in (("ptxas", "ptxas on PATH"), ("nvcc", "nvcc on PATH")):
        program = on_path(tool + exe)
        if program:
            add(via, os.path.dirname(os.path.dirname(program)), tool=program)
    for entry in sys.path:
        if entry and os.path.isdir(os.path.join(entry, "nvidia")):
            for folder, via in (("cu13", "wheel nvidia/cu13"), ("cuda_nvcc", "wheel nvidia/cuda_nvcc")):
                if os.path.isdir(os.path.join(entry, "nvidia", folder)):
                    add(via, os.path.join(entry, "nvidia", folder))
        if entry and os.path.isdir(os.path.join(entry, "tensorflow", "cuda")):
            add("tensorflow/cuda", os.path.join(entry, "tensorflow", "cuda"))
    if os.name == "nt":
        import glob

        toolkits = sorted(glob.glob("C:/Program Files/NVIDIA GPU Computing Toolkit/CUDA/v*.*"))
    else:
        for root in ("/usr/local/cuda", "/opt/cuda"):
            if os.path.isdir(root):
                add(root, root)
        import glob

        toolkits = sorted(glob.glob("/usr/local/cuda-*") + glob.glob("/opt/cuda-*"))
    add("prefix", sys.prefix)
    for root in toolkits[:6]:
        add("toolkit", root)
    return found


def framework_modules(records):
    """What `import X` would load for each framework, found without importing it, and who installed it."""
    try:
        import importlib.util
    except ImportError:
        return []
    found = []
    for module in FRAMEWORK_MODULES:
        try:
            spec = importlib.util.find_spec(module)
        except Exception:
            spec = None
        if spec is None:
            continue
        origin = spec.origin if spec.origin not in (None, "namespace", "built-in") else None
        if origin is None:
            locations = list(spec.submodule_search_locations or [])
            origin = locations[0] if locations else None
        if not origin:
            continue
        path = os.path.normpath(os.path.abspath(origin))
        rows = [(name, records[name][path]) for name in sorted(records) if path in records[name]]
        _, matches = on_disk(path, rows, [HASH_BUDGET]) if rows else (None, [])
        found.append(
            {"module": module, "path": path, "owners": [name for name, _ in rows], "matches": matches}
        )
    return found


def marker_environment():
    """PEP 508's marker variables for this interpreter, computed as `packaging` computes them."""
    import platform

    implementation = getattr(sys, "implementation", None)
    info = getattr(implementation, "version", None)
    version = "0"
    if info is not None:
        version = "%d.%d.%d" % (info.major, info.minor, info.micro)
        if info.releaselevel != "final":
            version += info.releaselevel[0] + str(info.serial)
    return {
        "implementation_name": getattr(implementation, "name", "cpython"),
        "implementation_version": version,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": clip(platform.version()),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


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
    found, record_folders = distributions(broken)
    records = {}
    for name, folder in record_folders.items():
        records[name] = read_record(folder, os.path.dirname(folder))
    shared, shared_total = shared_files(records)
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
        "distributions": found,
        "marker_environment": marker_environment(),
        "shared_files": shared,
        "shared_files_total": shared_total,
        "framework_modules": framework_modules(records),
        "wheel_tools": wheel_tools(records),
        "wheel_libraries": wheel_libraries(records),
        "cuda_roots": cuda_roots(),
        "shadowing": shadowing(sites),
        "unreadable_metadata": broken[:50],
    }
    emit(result)


main()
