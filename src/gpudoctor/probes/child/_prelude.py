# --- gpudoctor child prelude: shared by every script in this folder (standard library, Python 3.6) ---
# `child_process.script_source(name)` puts this text in front of the script; nothing here may print.
import sys

# `python -c` puts the working directory first on sys.path (`python file.py` puts the file's folder):
# drop it before importing anything, so a json.py or torch.py there is never run by gpudoctor.
if sys.path and not (getattr(sys.flags, "isolated", 0) or getattr(sys.flags, "safe_path", False)):
    if sys.path[0] == "" or (sys.argv[:1] != ["-c"] and __name__ == "__main__"):
        del sys.path[0]
sys.path[:] = [_entry for _entry in sys.path if _entry not in ("", ".")]

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402

MARKER = "@@GPUDOCTOR@@ "
MAX_READ = 1 << 20  # bytes read from one metadata or record file
METADATA_KEYS = frozenset(("name", "version", "requires-dist"))
_OUT_FD = os.dup(1)  # the real stdout, even if a framework replaces sys.stdout or redirects fd 1

# Every CUDA library a framework may load, by file name (libcudart.so.12, libcudnn_ops.so.9,
# libcublasLt-5d8a1b2c.so.12 as vendored in wheels, libcupti.so.2025.1.0, libnvshmem_host.so.3).
CUDA_LIBRARY = re.compile(
    r"^lib(?:cuda|cudart|cudnn[A-Za-z0-9_]*|cublas|cublasLt|cufft[A-Za-z]*|curand|cusolver[A-Za-z]*"
    r"|cusparse|cusparseLt|nccl|nvrtc|nvrtc-builtins|nvJitLink|cupti|cufile[A-Za-z_]*|nvshmem[A-Za-z_]*"
    r"|nvidia-ml)(?:[.\-_]|$)"
)


def emit(data):
    """Write one result line; the parent reads the last such line, so a later stage may overwrite."""
    line = ("\n" + MARKER + json.dumps(data) + "\n").encode("utf-8")
    while line:
        try:
            written = os.write(_OUT_FD, line)
        except OSError:
            return
        line = line[written:]


def canonical(name):
    """PEP 503: runs of - _ . made one -, lowercased (str.replace: a survey canonicalises thousands)."""
    name = str(name).replace("_", "-").replace(".", "-")
    while "--" in name:
        name = name.replace("--", "-")
    return name.lower()


def read_text(path, limit=MAX_READ):
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


def read_head(path, chunk=4096):
    """The start of a metadata file up to its first blank line: the header block, without the long
    description that follows it (most of a METADATA file's bytes). Read with os.open/os.read: a
    survey reads thousands, and a Python file object cost twice the reading."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (OSError, ValueError):
        return ""
    try:
        data = os.read(fd, chunk)
        while data and b"\n\n" not in data and b"\r\n\r\n" not in data and len(data) < MAX_READ:
            more = os.read(fd, chunk)
            if not more:
                break
            data += more
    except OSError:
        return ""
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace")


def describe_error(exc):
    message = str(exc).strip()
    return "%s: %s" % (type(exc).__name__, message) if message else type(exc).__name__


def _headers(text, keys=None):
    """The header block of a METADATA / PKG-INFO file: {lowercased key: [values]} (only `keys`, when given)."""
    headers = {}
    key = None
    initials = None if keys is None else {k[:1] for k in keys} | {k[:1].upper() for k in keys}
    for line in text.splitlines():
        if not line or line.isspace():
            break
        first = line[0]
        if first in " \t":
            if key is not None:
                headers[key][-1] += "\n" + line.strip()
            continue
        if initials is not None and first not in initials and not first.isspace():
            key = None  # a header not asked for (Classifier, Summary...): no need to split it
            continue
        name, sep, value = line.partition(":")
        key = name.strip().lower() if sep else None
        if key is None or (keys is not None and key not in keys):
            key = None
            continue
        headers.setdefault(key, []).append(value.strip())
    return headers


def _egg_requires(text):
    """requires.txt of an .egg-info, as Requires-Dist strings."""
    found = []
    marker = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            extra, _, condition = line[1:-1].partition(":")
            parts = (['extra == "%s"' % extra] if extra else []) + ([condition] if condition else [])
            marker = " and ".join(parts)
            continue
        found.append(line + ("; " + marker if marker else ""))
    return found


def _folder_name(folder):
    """The distribution a *.dist-info / *.egg-info folder names: `Tensorflow_GPU-2.11.0.dist-info` -> tensorflow-gpu."""
    stem = folder.rsplit(".", 1)[0]
    return canonical(stem.split("-")[0])


def installed_distributions(keep=None, broken=None, installer_for=None):
    """Distributions on sys.path in import order, the first of each name winning, without importing any.

    `keep(name)` (canonical name, from the folder name) skips reading the others; folders whose
    metadata is unreadable or names nothing are appended to `broken`; `installer_for(name)`, when given,
    says for which distributions the INSTALLER file is read (the others get installer None). Each item: name (canonical),
    version, requires, installer, location (the sys.path entry), path (the metadata folder or file).
    """
    found = []
    seen = set()
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        try:
            names = sorted(os.listdir(entry))
        except OSError:
            continue
        for folder in names:
            if not folder.endswith((".dist-info", ".egg-info")):
                continue
            guess = _folder_name(folder)
            if guess in seen or (keep is not None and not keep(guess)):
                continue
            path = os.path.join(entry, folder)
            is_dir = folder.endswith(".dist-info") or os.path.isdir(path)  # a .dist-info is always a folder
            if is_dir:
                meta = "METADATA" if folder.endswith(".dist-info") else "PKG-INFO"
                headers = _headers(read_head(os.path.join(path, meta)), METADATA_KEYS)
            else:
                headers = _headers(read_head(path), METADATA_KEYS)
            name = (headers.get("name") or [""])[0]
            if not name:
                if broken is not None:
                    broken.append(path)
                continue
            key = canonical(name)
            if key in seen:
                continue
            seen.add(key)
            requires = headers.get("requires-dist") or []
            if not requires and is_dir and folder.endswith(".egg-info"):
                requires = _egg_requires(read_text(os.path.join(path, "requires.txt")))
            wanted = installer_for is None or installer_for(key)
            installer = read_text(os.path.join(path, "INSTALLER"), 256).strip() if is_dir and wanted else ""
            found.append(
                {
                    "name": key,
                    "version": (headers.get("version") or [""])[0],
                    "requires": requires,
                    "installer": installer or None,
                    "location": entry,
                    "path": path,
                }
            )
    return found


def conda_records(names, prefix=None):
    """conda-meta records of these package names in the interpreter's prefix: {name: {version, build, channel}}."""
    folder = os.path.join(prefix or sys.prefix, "conda-meta")
    try:
        files = sorted(os.listdir(folder))
    except OSError:
        return {}
    found = {}
    for file_name in files:
        if not file_name.endswith(".json") or not any(file_name.startswith(n + "-") for n in names):
            continue
        try:
            record = json.loads(read_text(os.path.join(folder, file_name)))
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("name") in names and record["name"] not in found:
            found[record["name"]] = {
                "version": str(record.get("version", "")),
                "build": str(record.get("build", record.get("build_string", ""))),
                "channel": str(record.get("channel", "")),
            }
    return found


def loaded_libraries():
    """CUDA libraries this process has mapped (Linux: /proc/self/maps), in load order."""
    paths = []
    if not sys.platform.startswith("linux"):
        return paths
    for line in read_text("/proc/self/maps", 1 << 26).splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/"):
            path = parts[5].strip()
            if CUDA_LIBRARY.match(os.path.basename(path)) and path not in paths:
                paths.append(path)
    return paths


# --- end of the prelude ---
