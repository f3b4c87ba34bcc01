"""Which CUDA libraries this interpreter's dynamic loader finds, every copy on disk, and their versions.

Runs inside the target interpreter (standard library only, Python 3.6 syntax). A library is asked
for its own version where it loads; the cuDNN header and the file name are the fallbacks. Before
each load or call a step line goes to stderr, so that when a library kills this process the
parent knows which one, and can run this script again with `--skip <soname-or-path>`.

Memory stays bounded (issue #12: 360 MB with torch's nvidia wheels): each library is unloaded once
it has answered, and a copy that would map more than LOAD_LIMIT bytes with the CUDA libraries it
needs (libcublas and libcusolver pull in the 0.5 GB libcublasLt) is not loaded to ask: its version
comes from the wheel that installed it, else from its file name.
"""

import ctypes
import glob
import os
import re
import struct
import sys
import sysconfig
from typing import List, Optional, Tuple

from _prelude import emit

STEP = "@@GPUDOCTOR-STEP@@ "
WINDOWS = os.name == "nt"
MAX_DIRS = 200
MAX_FILES = 300
# bytes on disk of a library and the CUDA libraries it needs above which it is not loaded to be asked
LOAD_LIMIT = 384 << 20

KINDS = {
    "cudart": "cudart",
    "cudnn": "cudnn",
    "cublas": "cublas",
    "cufft": "cufft",
    "cusolver": "cusolver",
    "cusparse": "cusparse",
    "nccl": "nccl",
    "nvrtc": "nvrtc",
    "cuda": "libcuda",
    "nvidia-ml": "nvml",
}
LINUX_NAME = re.compile(
    r"^lib(cudart|cudnn|cublas|cufft|cusolver|cusparse|nccl|nvrtc|cuda|nvidia-ml)"
    r"(?:-[0-9a-f]{8})?\.so(?:\.(\d+(?:\.\d+)*))?$"
)
WINDOWS_NAME = re.compile(
    r"^(cudart|cudnn|cublas|cufft|cusolver|cusparse|nvrtc)(?:64|32)_(\d+)(?:_\d+)?\.dll$", re.IGNORECASE
)
WINDOWS_FIXED = {"nvcuda.dll": "libcuda", "nvml.dll": "nvml"}

SONAMES = {
    "cudart": ["13", "12", "11.0", "10.2", "10.1", "10.0", "9.2", "9.0"],
    "cudnn": ["9", "8", "7"],
    "cublas": ["13", "12", "11", "10"],
    "cufft": ["12", "11", "10"],
    "cusolver": ["12", "11", "10"],
    "cusparse": ["12", "11", "10"],
    "nccl": ["2"],
    "nvrtc": ["13", "12", "11.2", "11.1", "11.0", "10.2", "10.1"],
    "libcuda": ["1"],
    "nvml": ["1"],
}
STEMS = {"libcuda": "cuda", "nvml": "nvidia-ml"}
DLLS = {
    "cudart": [
        "cudart64_13.dll",
        "cudart64_12.dll",
        "cudart64_110.dll",
        "cudart64_102.dll",
        "cudart64_101.dll",
    ],
    "cudnn": ["cudnn64_9.dll", "cudnn64_8.dll", "cudnn64_7.dll"],
    "cublas": ["cublas64_13.dll", "cublas64_12.dll", "cublas64_11.dll", "cublas64_10.dll"],
    "cufft": ["cufft64_12.dll", "cufft64_11.dll", "cufft64_10.dll"],
    "cusolver": ["cusolver64_12.dll", "cusolver64_11.dll", "cusolver64_10.dll"],
    "cusparse": ["cusparse64_12.dll", "cusparse64_11.dll", "cusparse64_10.dll"],
    "nvrtc": [
        "nvrtc64_130_0.dll",
        "nvrtc64_120_0.dll",
        "nvrtc64_112_0.dll",
        "nvrtc64_110_0.dll",
        "nvrtc64_101_0.dll",
    ],
    "libcuda": ["nvcuda.dll"],
    "nvml": ["nvml.dll"],
}
PROPERTY_PREFIX = {"cublas": "cublas", "cufft": "cufft", "cusolver": "cusolver", "cusparse": "cusparse"}


def step(what):
    sys.stderr.write(STEP + what + "\n")
    sys.stderr.flush()


def norm(path):
    return os.path.normcase(os.path.abspath(path))


def real(path):
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return path


def under_normed(path, roots):
    """True when `path` is one of `roots` or inside one; all already passed through `norm`."""
    for root in roots:
        if path == root or path.startswith(root.rstrip("\\/") + os.sep):
            return True
    return False


def site_dirs():
    found = []
    for entry in sys.path:
        if entry and os.path.basename(entry.rstrip("\\/")).lower() in ("site-packages", "dist-packages"):
            if os.path.isdir(entry) and entry not in found:
                found.append(entry)
    return found


def conda_prefixes():
    found = []
    for prefix in (os.environ.get("CONDA_PREFIX"), sys.prefix):
        if prefix and os.path.isdir(os.path.join(prefix, "conda-meta")) and prefix not in found:
            found.append(prefix)
    return found


def toolkit_roots():
    roots = [os.environ.get(v) for v in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(v)]
    if WINDOWS:
        program_files = os.environ.get("ProgramFiles") or "C:\\Program Files"
        roots += sorted(glob.glob(os.path.join(program_files, "NVIDIA GPU Computing Toolkit", "CUDA", "v*")))
    else:
        found = glob.glob("/usr/local/cuda*") + glob.glob("/opt/cuda*")
        roots += sorted(found, key=lambda p: (os.path.islink(p), p))  # cuda-12.2 before the cuda symlink
    return roots


class Search(object):
    def __init__(self):
        self.sites = site_dirs()
        self.prefixes = conda_prefixes()
        self.toolkits = toolkit_roots()
        self.path_var = "PATH" if WINDOWS else "LD_LIBRARY_PATH"
        self.var_dirs = [d for d in os.environ.get(self.path_var, "").split(os.pathsep) if d]
        self.var_norms = {norm(d) for d in self.var_dirs}  # every folder is looked up: a set, not a list
        self.site_norms = [(norm(os.path.join(site, "nvidia")), norm(site)) for site in self.sites]
        self.prefix_norms = [norm(p) for p in self.prefixes]
        self.toolkit_norms = [norm(t) for t in self.toolkits]
        self.dirs = []  # (shown path, location)
        self.seen_dirs = set()

    def classify(self, folder, default):
        for candidate in (norm(folder), norm(real(folder))):
            for nvidia, site in self.site_norms:
                if under_normed(candidate, [nvidia]):
                    return "pip-wheel"
                if under_normed(candidate, [site]):
                    return "framework"
            if under_normed(candidate, self.prefix_norms):
                return "conda"
            if not WINDOWS and under_normed(candidate, [norm("/usr/lib/wsl")]):
                return "wsl"
            if under_normed(candidate, self.toolkit_norms):
                return "cuda-toolkit"
        if norm(folder) in self.var_norms:
            return "ld_library_path" if not WINDOWS else "path"
        return default

    def add_dir(self, folder, default):
        if not folder or len(self.dirs) >= MAX_DIRS or not os.path.isdir(folder):
            return
        key = norm(real(folder))
        if key in self.seen_dirs:
            return
        self.seen_dirs.add(key)
        self.dirs.append((folder, self.classify(folder, default)))

    def collect_dirs(self):
        var_location = "path" if WINDOWS else "ld_library_path"
        for folder in self.var_dirs:
            self.add_dir(folder, var_location)
        for site in self.sites:
            if WINDOWS:
                for folder in sorted(glob.glob(os.path.join(site, "nvidia", "*", "bin"))):
                    self.add_dir(folder, "pip-wheel")
                self.add_dir(os.path.join(site, "nvidia", "cu13", "bin", "x86_64"), "pip-wheel")
            else:
                for folder in sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib"))):
                    self.add_dir(folder, "pip-wheel")
            self.add_dir(os.path.join(site, "torch", "lib"), "framework")
        for prefix in self.prefixes:
            self.add_dir(
                os.path.join(prefix, "Library", "bin") if WINDOWS else os.path.join(prefix, "lib"), "conda"
            )
        for root in self.toolkits:
            if WINDOWS:
                self.add_dir(os.path.join(root, "bin"), "cuda-toolkit")
                continue
            for sub in ("lib64", "lib"):
                self.add_dir(os.path.join(root, sub), "cuda-toolkit")
            for folder in sorted(glob.glob(os.path.join(root, "targets", "*", "lib"))):
                self.add_dir(folder, "cuda-toolkit")
        if WINDOWS:
            system_root = os.environ.get("SystemRoot") or "C:\\Windows"
            self.add_dir(os.path.join(system_root, "System32"), "system")
            return
        self.add_dir("/usr/lib/wsl/lib", "wsl")
        multiarch = sysconfig.get_config_var("MULTIARCH") or ""
        for folder in (
            "/usr/lib/" + multiarch,
            "/lib/" + multiarch,
            "/usr/lib64",
            "/usr/lib",
            "/usr/local/lib",
            "/usr/lib/" + multiarch + "/nvidia/current",
            "/usr/lib64/nvidia",
        ):
            if not folder.endswith("/"):
                self.add_dir(folder, "system")


def match_name(name: str) -> Optional[Tuple[str, str]]:
    """(kind, version digits) for a CUDA library file name, or None."""
    if WINDOWS:
        kind = WINDOWS_FIXED.get(name.lower())
        if kind:
            return kind, ""
        match = WINDOWS_NAME.match(name)
        return (match.group(1).lower(), match.group(2)) if match else None
    match = LINUX_NAME.match(name)
    if not match:
        return None
    kind = KINDS[match.group(1)]
    if kind == "libcuda" and not match.group(2):
        return None  # the unversioned libcuda.so is the link-time stub, never what programs load
    return kind, match.group(2) or ""


def version_from_so(kind: str, digits: str) -> Optional[str]:
    """Version told by a .so suffix: a full version when the real file carries one, else only the major."""
    parts = [p for p in digits.split(".") if p]
    if not parts:
        return None
    if kind in ("libcuda", "nvml"):
        return digits if len(parts) >= 2 and int(parts[0]) >= 100 else None  # libcuda.so.535.104.05
    if len(parts) >= 3:
        return ".".join(parts)
    if len(parts) == 2 and kind in ("cudart", "nvrtc", "cublas") and int(parts[0]) <= 10:
        return ".".join(parts)  # before CUDA 11 the soname named the minor version too (libcudart.so.10.1)
    return parts[0]


def version_from_dll(kind: str, digits: str) -> Optional[str]:
    """cudart64_110.dll -> 11, cudart64_101.dll -> 10.1, cudart64_92.dll -> 9.2, cudnn64_8.dll -> 8."""
    if not digits:
        return None
    if kind == "cudnn":
        return digits
    if len(digits) >= 3:
        major, minor = digits[:-1], digits[-1]
        return major if int(major) >= 11 else major + "." + minor
    if len(digits) == 2 and digits.startswith("9") and kind in ("cudart", "cublas", "nvrtc", "cufft"):
        return digits[0] + "." + digits[1]
    return digits


def file_name_version(kind: str, names: List[str]) -> Optional[str]:
    best = None
    for name in names:
        matched = match_name(name)
        if not matched:
            continue
        version = version_from_dll(kind, matched[1]) if WINDOWS else version_from_so(kind, matched[1])
        if version and (best is None or len(version.split(".")) > len(best.split("."))):
            best = version
    return best


def decode_cudnn(value: int) -> str:
    if value >= 10000:  # cuDNN 9: major*10000 + minor*100 + patch
        return "%d.%d.%d" % (value // 10000, (value % 10000) // 100, value % 100)
    return "%d.%d.%d" % (value // 1000, (value % 1000) // 100, value % 100)


def decode_nccl(value: int) -> str:
    if value >= 10000:  # NCCL >= 2.9: major*10000 + minor*100 + patch
        return "%d.%d.%d" % (value // 10000, (value % 10000) // 100, value % 100)
    return "%d.%d.%d" % (value // 1000, (value % 1000) // 100, value % 100)


def call_version(lib, kind):
    """Ask the loaded library for its version; None when it has no such call."""
    try:
        if kind == "cudart":
            value = ctypes.c_int(0)
            if lib.cudaRuntimeGetVersion(ctypes.byref(value)) != 0 or value.value <= 0:
                return None
            return "%d.%d" % (value.value // 1000, (value.value % 1000) // 10)
        if kind == "cudnn":
            function = lib.cudnnGetVersion
            function.restype = ctypes.c_size_t
            function.argtypes = []
            value = function()
            return decode_cudnn(value) if value > 0 else None
        if kind == "nccl":
            value = ctypes.c_int(0)
            if lib.ncclGetVersion(ctypes.byref(value)) != 0 or value.value <= 0:
                return None
            return decode_nccl(value.value)
        if kind == "nvrtc":
            major, minor = ctypes.c_int(0), ctypes.c_int(0)
            if lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)) != 0 or major.value <= 0:
                return None
            return "%d.%d" % (major.value, minor.value)
        if kind in PROPERTY_PREFIX:
            function = getattr(lib, PROPERTY_PREFIX[kind] + "GetProperty")
            parts = []
            for prop in (0, 1, 2):  # MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
                value = ctypes.c_int(-1)
                if function(ctypes.c_int(prop), ctypes.byref(value)) != 0 or value.value < 0:
                    return None
                parts.append(str(value.value))
            return ".".join(parts)
    except AttributeError:
        return None
    return None


def header_version(folder, major):
    """cuDNN version from cudnn_version.h (v8+) or cudnn.h (v7) next to the library or in /usr/include."""
    include_dirs = [os.path.join(os.path.dirname(folder.rstrip("\\/")), "include")]
    if not WINDOWS:
        multiarch = sysconfig.get_config_var("MULTIARCH") or ""
        include_dirs += ["/usr/include", "/usr/include/" + multiarch] if multiarch else ["/usr/include"]
    names = ["cudnn_version.h", "cudnn.h"]
    if major:
        names = ["cudnn_version_v%s.h" % major, "cudnn_v%s.h" % major] + names
    for include in include_dirs:
        for name in names:
            path = os.path.join(include, name)
            try:
                with open(path, "rb") as handle:
                    text = handle.read(262144).decode("utf-8", "replace")
            except (IOError, OSError):
                continue
            numbers = []
            for macro in ("CUDNN_MAJOR", "CUDNN_MINOR", "CUDNN_PATCHLEVEL"):
                match = re.search(r"^\s*#\s*define\s+" + macro + r"\s+(\d+)\s*$", text, re.MULTILINE)
                numbers.append(match.group(1) if match else None)
            if None in numbers or (major and numbers[0] != major):
                continue
            return ".".join(numbers)
    return None


def needed(path):
    """The DT_NEEDED names of an ELF shared library (64-bit, little-endian); [] for anything else."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return []
            (phoff,) = struct.unpack_from("<Q", head, 32)
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            handle.seek(phoff)
            table = handle.read(phentsize * phnum)
            loads, dynamic = [], None
            for i in range(phnum):
                kind, _, offset, vaddr, _, filesz, _, _ = struct.unpack_from(
                    "<IIQQQQQQ", table, i * phentsize
                )
                if kind == 1:
                    loads.append((vaddr, offset, filesz))
                elif kind == 2:
                    dynamic = (offset, filesz)
            if dynamic is None or dynamic[1] > 1 << 20:
                return []
            handle.seek(dynamic[0])
            entries = handle.read(dynamic[1])
            strtab, names = None, []
            for i in range(len(entries) // 16):
                tag, value = struct.unpack_from("<qQ", entries, i * 16)
                if tag == 0:
                    break
                if tag == 5:
                    strtab = value
                elif tag == 1:
                    names.append(value)
            if strtab is None:
                return []
            base = next((off + strtab - va for va, off, size in loads if va <= strtab < va + size), None)
            if base is None:
                return []
            found = []
            for at in names:
                handle.seek(base + at)
                found.append(handle.read(256).split(b"\0", 1)[0].decode("utf-8", "replace"))
            return found
    except (OSError, ValueError, struct.error):
        return []


def load_size(path):
    """Bytes on disk of a library and the CUDA libraries it needs from its own folder."""
    folder, total = os.path.dirname(path), 0
    for name in [os.path.basename(path)] + [n for n in needed(path) if CUDA_DEPENDENCY.match(n)]:
        try:
            total += os.path.getsize(os.path.join(folder, name))
        except OSError:
            continue
    return total


CUDA_DEPENDENCY = re.compile(r"^lib(cu|nv|nccl)[A-Za-z0-9_]*\.so")


def package_versions(sites):
    """{real path of a file: version} for the files the nvidia-* wheels installed, from their RECORD."""
    versions = {}
    for site in sites:
        try:
            folders = [f for f in os.listdir(site) if f.startswith("nvidia") and f.endswith(".dist-info")]
        except OSError:
            continue
        for folder in folders:
            version = folder[: -len(".dist-info")].rpartition("-")[2]
            try:
                with open(os.path.join(site, folder, "RECORD"), "rb") as handle:
                    lines = handle.read(1 << 20).decode("utf-8", "replace").splitlines()
            except (OSError, ValueError):
                continue
            for line in lines:
                name = line.split(",", 1)[0]
                if ".so" in name or name.lower().endswith(".dll"):
                    versions[real(os.path.join(site, name))] = version
    return versions


def unload(lib):
    """Let a library that answered go (its pages with it), so that the next one does not add to it."""
    try:
        if WINDOWS:
            ctypes.windll.kernel32.FreeLibrary(ctypes.c_void_p(lib._handle))
        else:
            import _ctypes

            _ctypes.dlclose(lib._handle)
    except (AttributeError, OSError, ImportError):
        pass


def load(name, by_path):
    if WINDOWS:
        try:
            return ctypes.CDLL(name, winmode=0x00000008 if by_path else 0)
        except TypeError:  # Python < 3.8 has no winmode and searches PATH anyway
            return ctypes.CDLL(name)
    return ctypes.CDLL(name)


class _LinkMap(ctypes.Structure):
    _fields_ = [("l_addr", ctypes.c_void_p), ("l_name", ctypes.c_char_p)]


def loaded_path(lib, stem, before):
    """The file a loaded library came from: dlinfo / GetModuleFileNameW, else new lines in /proc/self/maps."""
    if WINDOWS:
        try:
            buffer = ctypes.create_unicode_buffer(32768)
            kernel32 = ctypes.WinDLL("kernel32")
            kernel32.GetModuleFileNameW.argtypes = [ctypes.c_void_p, ctypes.c_wchar_p, ctypes.c_uint32]
            if kernel32.GetModuleFileNameW(ctypes.c_void_p(lib._handle), buffer, 32768):
                return buffer.value
        except (AttributeError, OSError):
            pass
        return None
    dlinfo = find_dlinfo()
    if dlinfo is not None:
        link_map = ctypes.POINTER(_LinkMap)()
        if dlinfo(ctypes.c_void_p(lib._handle), 2, ctypes.byref(link_map)) == 0 and link_map:
            name = link_map.contents.l_name
            if name:
                return os.fsdecode(name)
    for path in sorted(maps() - before):
        if os.path.basename(path).startswith("lib" + stem + ".so") or os.path.basename(path).startswith(
            "lib" + stem + "-"
        ):
            return path
    return None


_DLINFO = []


def find_dlinfo():
    """glibc's dlinfo (in libc, or libdl before glibc 2.34), looked up once; None where there is none."""
    if not _DLINFO:
        found = None
        for libname in (None, "libdl.so.2"):
            try:
                found = ctypes.CDLL(libname).dlinfo
            except (OSError, AttributeError):
                continue
            found.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
            break
        _DLINFO.append(found)
    return _DLINFO[0]


def maps():
    try:
        with open("/proc/self/maps") as handle:
            return {line.split(None, 5)[5].strip() for line in handle if len(line.split(None, 5)) == 6}
    except (IOError, OSError):
        return set()


def load_error_text(exc):
    return str(exc).strip() or type(exc).__name__


def pathless(kind, soname):
    """An entry for a library known only by name: the loader failed on it, or loading it crashed us."""
    return {
        "kind": kind,
        "name": soname,
        "path": "",
        "location": "other",
        "version": None,
        "version_source": None,
        "names": [soname],
    }


def main(argv):
    skip = set()
    for i, arg in enumerate(argv):
        if arg == "--skip" and i + 1 < len(argv):
            skip.add(argv[i + 1])
    search = Search()
    search.collect_dirs()

    files = {}  # real path -> entry
    order = []
    for folder, location in search.dirs:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        groups = {}
        for name in names:
            matched = match_name(name)
            if not matched:
                continue
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                continue
            groups.setdefault(real(path), []).append((matched[0], name))
        for real_path, members in sorted(groups.items()):
            if real_path in files or len(order) >= MAX_FILES:
                continue
            kind = members[0][0]
            member_names = [n for _, n in members]
            versioned = [
                n for n in member_names if re.search(r"(\.so\.\d|_\d+(_\d+)?\.dll$)", n, re.IGNORECASE)
            ]
            shown = min(versioned or member_names, key=lambda n: (len(n), n))
            files[real_path] = {
                "kind": kind,
                "name": shown,
                "path": os.path.join(folder, shown),
                "location": location,
                "version": None,
                "version_source": None,
                "loader_default": False,
                "load_error": None,
                "names": member_names + [os.path.basename(real_path)],
            }
            order.append(real_path)

    for kind, suffixes in SONAMES.items():
        candidates = (
            DLLS.get(kind, []) if WINDOWS else ["lib%s.so.%s" % (STEMS.get(kind, kind), s) for s in suffixes]
        )
        for soname in candidates:
            if soname in skip:
                entry = pathless(kind, soname)
                entry.update(loader_default=True, load_error="loading it crashed the process")
                files["skip:" + soname] = entry
                order.append("skip:" + soname)
                continue
            # what was mapped before: how a loaded library is found where dlinfo cannot say
            before = maps() if not WINDOWS and find_dlinfo() is None else set()
            step("load " + soname)
            try:
                lib = load(soname, by_path=False)
            except OSError as exc:
                message = load_error_text(exc)
                if WINDOWS or ((soname + ":") in message and "No such file" in message):
                    continue
                holder = next(
                    (
                        files[r]
                        for r in order
                        if files[r]["name"] == soname
                        and files[r]["location"]
                        in ("ld_library_path", "system", "cuda-toolkit", "conda", "wsl")
                    ),
                    None,
                )
                if holder is None:
                    holder = pathless(kind, soname)
                    files["error:" + soname] = holder
                    order.append("error:" + soname)
                holder["loader_default"] = True
                holder["load_error"] = message
                continue
            path = loaded_path(lib, STEMS.get(kind, kind), before)
            real_path = real(path) if path else "loaded:" + soname
            entry = files.get(real_path)
            if entry is None:
                folder = os.path.dirname(path) if path else ""
                default = "system"
                if folder and norm(folder) in search.var_norms:
                    default = "path" if WINDOWS else "ld_library_path"
                entry = {
                    "kind": kind,
                    "name": os.path.basename(path) if path else soname,
                    "path": path or "",
                    "location": search.classify(folder, default) if folder else "other",
                    "version": None,
                    "version_source": None,
                    "load_error": None,
                    "names": [soname, os.path.basename(real_path)],
                }
                files[real_path] = entry
                order.append(real_path)
            entry["loader_default"] = True
            if entry["version"] is None and real_path not in skip:
                step("call " + real_path)
                version = call_version(lib, kind)
                if version:
                    entry["version"], entry["version_source"] = version, "call"
            unload(lib)
            del lib

    wheels = None
    for real_path in order:
        entry = files[real_path]
        if entry["version"] is None and entry["path"] and entry["load_error"] is None:
            if real_path in skip:
                entry["load_error"] = "loading it or asking its version crashed the process"
            elif entry["kind"] in ("libcuda", "nvml"):
                pass
            elif not WINDOWS and load_size(entry["path"]) > LOAD_LIMIT:
                if wheels is None:
                    wheels = package_versions(search.sites)
                if real_path in wheels:
                    entry["version"], entry["version_source"] = wheels[real_path], "package"
            else:
                step("call " + real_path)
                try:
                    lib = load(entry["path"], by_path=True)
                except OSError as exc:
                    entry["load_error"] = load_error_text(exc)
                else:
                    version = call_version(lib, entry["kind"])
                    if version:
                        entry["version"], entry["version_source"] = version, "call"
                    unload(lib)
                    del lib
        if entry["version"] is None and entry["kind"] == "cudnn" and entry["path"]:
            major = file_name_version("cudnn", entry["names"])
            version = header_version(os.path.dirname(entry["path"]), (major or "").split(".")[0])
            if version:
                entry["version"], entry["version_source"] = version, "header"
        if entry["version"] is None:
            version = file_name_version(entry["kind"], entry["names"])
            if version:
                entry["version"], entry["version_source"] = version, "file-name"

    out = []
    for real_path in order:
        entry = dict(files[real_path])
        entry.pop("names", None)
        entry["real"] = real_path
        out.append(entry)
    result = {"files": out, "searched": [folder for folder, _ in search.dirs], "path_var": search.path_var}
    emit(result)


if __name__ == "__main__":
    main(sys.argv[1:])
