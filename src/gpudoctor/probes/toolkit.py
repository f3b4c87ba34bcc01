"""CUDA toolkits on disk: every install found, how it was found, its version, and the active one.

Finders: `nvcc` on PATH, `CUDA_HOME` / `CUDA_PATH` (and Windows' `CUDA_PATH_Vnn_n`), the conda
environment's own nvcc, and the standard install folders. An install's version comes from its
`version.json` (CUDA >= 11.1), else `version.txt`, else what its nvcc says.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from gpudoctor import lazy_re
from gpudoctor.facts import CudaInstall, ToolkitFacts
from gpudoctor.probes.base import Description, Mark, Probe, ProbeContext, ProbeUnavailable, load_json
from gpudoctor.runner import concurrently

NVCC_TIMEOUT = 5.0
MAX_INSTALLS = 12
_NVCC_RELEASE = lazy_re.compile(r"release (\d+\.\d+)(?:, V(\d+(?:\.\d+)+))?")
_VERSION_TXT = lazy_re.compile(r"CUDA Version (\d+(?:\.\d+)+)")
_WRAPPED_NVCC = re.compile(rb"""(/[^\s'"]+/bin/nvcc)(?![\w.-])""")


def parse_nvcc_version(output: str) -> str | None:
    """'Cuda compilation tools, release 12.2, V12.2.140' -> '12.2.140' (or '12.2' without the V part)."""
    match = _NVCC_RELEASE.search(output)
    if match is None:
        return None
    full = match.group(2)
    return full if full and full.startswith(match.group(1) + ".") else match.group(1)


def parse_version_json(text: str) -> str:
    """The toolkit's version from version.json: the runtime's ("12.2.140"), else the toolkit's major.minor."""
    loaded = load_json(text)
    data = loaded if isinstance(loaded, dict) else {}
    for key in ("cuda_cudart", "cuda_nvcc"):
        entry = data.get(key)
        version = entry.get("version") if isinstance(entry, dict) else None
        if isinstance(version, str) and re.fullmatch(r"\d+(\.\d+)+", version):
            return version
    entry = data.get("cuda")
    version = entry.get("version") if isinstance(entry, dict) else None
    if isinstance(version, str) and (match := re.match(r"(\d+\.\d+)(?:\.|$)", version)):
        return match.group(1)  # the third part is a date (12.2.20230823), not a patch level
    raise ValueError("version.json has no cuda, cuda_cudart or cuda_nvcc version")


def parse_version_txt(text: str) -> str:
    match = _VERSION_TXT.search(text)
    if match is None:
        raise ValueError("version.txt has no 'CUDA Version x.y.z' line")
    return match.group(1)


@dataclass
class _Found:
    path: str
    found_via: list[str] = field(default_factory=list)
    nvcc: str | None = None


@dataclass
class _Search:
    ctx: ProbeContext
    windows: bool
    installs: dict[str, _Found] = field(default_factory=dict)
    nvcc_results: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    @property
    def nvcc_name(self) -> str:
        return "nvcc.exe" if self.windows else "nvcc"

    def resolve(self, path: str) -> str:
        return _resolve(self.ctx, path)

    def looks_like_toolkit(self, root: str) -> bool:
        base = self.ctx.path(root)
        markers = [base / "bin" / self.nvcc_name, base / "version.json", base / "version.txt"]
        if any(_is_file(m) for m in markers):
            return True
        patterns = (
            ("bin/cudart64_*.dll",)
            if self.windows
            else ("lib64/libcudart.so*", "targets/*/lib/libcudart.so*")
        )
        return any(_first(base, pattern) for pattern in patterns)

    def add(self, root: str, via: str, nvcc: str | None = None) -> str | None:
        if not root or not self.looks_like_toolkit(root):
            return None
        key = self.resolve(root)
        found = self.installs.get(key)
        if found is None:
            if len(self.installs) >= MAX_INSTALLS:
                return None
            found = self.installs[key] = _Found(path=key)
        if via not in found.found_via:
            found.found_via.append(via)
        if nvcc and found.nvcc is None:
            found.nvcc = nvcc
        return key

    def run_nvcc(self, nvcc: str) -> tuple[str | None, str | None]:
        """(version, error) of one nvcc (or ptxas: its --version says the same), run at most once per file."""
        key = self.resolve(nvcc)
        if key not in self.nvcc_results:
            result = self.ctx.runner.run(
                [str(self.ctx.path(nvcc)), "--version"], timeout=NVCC_TIMEOUT, env=self.ctx.tool_env
            )
            if not result.ok:
                self.nvcc_results[key] = (None, result.describe_failure())
            elif (version := parse_nvcc_version(result.stdout + "\n" + result.stderr)) is None:
                first = (result.stdout.strip() or result.stderr.strip() or "nothing").splitlines()[0][:120]
                self.nvcc_results[key] = (
                    None,
                    f"{Path(nvcc).name} --version printed no CUDA release: {first!r}",
                )
            else:
                self.nvcc_results[key] = (version, None)
        return self.nvcc_results[key]

    def run_all(self, programs: Iterable[str | None]) -> None:
        """Each program's --version at once (`run_nvcc` then answers from what they said): they do
        not depend on each other, and one after another they were most of this probe's time."""
        wanted: dict[str, str] = {}
        for program in programs:
            if program and (key := self.resolve(program)) not in self.nvcc_results:
                wanted.setdefault(key, program)
        concurrently([functools.partial(self.run_nvcc, program) for program in wanted.values()])

    def nvcc_root(self, nvcc: str) -> str:
        """The install an nvcc belongs to, through symlinks and one-line wrapper scripts (/usr/local/bin/nvcc)."""
        real = self.resolve(nvcc)
        try:
            with self.ctx.path(real).open("rb") as handle:
                head = handle.read(4096)
        except OSError:
            head = b""
        if head.startswith(b"#!") and (match := _WRAPPED_NVCC.search(head)):
            real = self.resolve(match.group(1).decode("utf-8", errors="replace"))
        return str(Path(real).parent.parent)


def collect(ctx: ProbeContext) -> ToolkitFacts:
    search = _Search(ctx=ctx, windows=ctx.os_name == "Windows")
    nvcc_on_path = _which(ctx, search.nvcc_name, search.windows)
    path_install = None
    if nvcc_on_path:
        path_install = search.add(search.nvcc_root(nvcc_on_path), "PATH", nvcc=nvcc_on_path)

    cuda_home_var = next((v for v in ("CUDA_HOME", "CUDA_PATH") if ctx.env.get(v)), None)
    cuda_home = ctx.env.get(cuda_home_var) if cuda_home_var else None
    home_install = None
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        if value := ctx.env.get(variable):
            added = search.add(value, variable)
            home_install = home_install or (added if variable == cuda_home_var else None)
    if search.windows:
        for variable in sorted(v for v in ctx.env if re.fullmatch(r"CUDA_PATH_V\d+_\d+", v)):
            search.add(ctx.env[variable], variable)

    if conda_prefix := ctx.env.get("CONDA_PREFIX"):
        root = str(Path(conda_prefix) / "Library") if search.windows else conda_prefix
        conda_nvcc = str(Path(root) / "bin" / search.nvcc_name)
        if _is_file(ctx.path(conda_nvcc)):
            search.add(root, "conda", nvcc=conda_nvcc)

    for root in _standard_locations(ctx, search.windows):
        search.add(root, "standard-location")

    symlink_install = None
    if not search.windows and ctx.path("/usr/local/cuda").is_symlink():
        target = search.resolve("/usr/local/cuda")
        symlink_install = target if target in search.installs else None

    if not search.installs and not nvcc_on_path and not cuda_home:
        raise ProbeUnavailable(
            "no CUDA toolkit: no nvcc on PATH, no CUDA_HOME/CUDA_PATH, no standard install"
        )

    ptxas_on_path = _which(ctx, "ptxas.exe" if search.windows else "ptxas", search.windows)
    search.run_all(
        [nvcc_on_path, *(_nvcc_of(search, found) for found in search.installs.values()), ptxas_on_path]
    )
    nvcc_version, nvcc_error = search.run_nvcc(nvcc_on_path) if nvcc_on_path else (None, None)
    installs = tuple(_finish(search, found) for found in search.installs.values())
    ptxas_version, ptxas_error = search.run_nvcc(ptxas_on_path) if ptxas_on_path else (None, None)
    return ToolkitFacts(
        installs=installs,
        nvcc_on_path=nvcc_on_path,
        nvcc_version=nvcc_version,
        nvcc_error=nvcc_error,
        cuda_home=cuda_home,
        cuda_home_var=cuda_home_var,  # type: ignore[arg-type]
        active=path_install or home_install or symlink_install,
        ptxas_on_path=ptxas_on_path,
        ptxas_version=ptxas_version,
        ptxas_error=ptxas_error,
    )


def _nvcc_of(search: _Search, found: _Found) -> str | None:
    """The install's own bin/nvcc, else the nvcc it was found through."""
    own_nvcc = str(Path(found.path) / "bin" / search.nvcc_name)
    return own_nvcc if _is_file(search.ctx.path(own_nvcc)) else found.nvcc


def _finish(search: _Search, found: _Found) -> CudaInstall:
    base = search.ctx.path(found.path)
    nvcc = _nvcc_of(search, found)
    nvcc_version, nvcc_error = search.run_nvcc(nvcc) if nvcc else (None, None)
    version = source = error = None
    for name, parse in (("version.json", parse_version_json), ("version.txt", parse_version_txt)):
        file = base / name
        if not file.exists():
            continue
        try:
            version, source = parse(file.read_text(encoding="utf-8", errors="replace")), name
            break
        except (OSError, ValueError) as exc:
            error = f"{name}: {exc}"
    if version is None and nvcc_version is not None:
        version, source = nvcc_version, "nvcc"
    elif version is None and nvcc_error:
        error = error or nvcc_error
    return CudaInstall(
        path=found.path,
        version=version,
        found_via=tuple(found.found_via),
        nvcc=nvcc,
        nvcc_version=nvcc_version,
        version_source=source,  # type: ignore[arg-type]
        version_error=error,
    )


def _standard_locations(ctx: ProbeContext, windows: bool) -> list[str]:
    if windows:
        program_files = ctx.env.get("ProgramFiles") or r"C:\Program Files"
        base = Path(program_files) / "NVIDIA GPU Computing Toolkit" / "CUDA"
        return [str(base / p.name) for p in _sorted_dirs(ctx.path(str(base)), "v*")]
    roots: list[str] = []
    for parent, pattern in (("/usr/local", "cuda*"), ("/opt", "cuda*")):
        roots += [f"{parent}/{p.name}" for p in _sorted_dirs(ctx.path(parent), pattern)]
    return [*roots, "/usr/lib/cuda", "/usr/lib/nvidia-cuda-toolkit"]


def _sorted_dirs(folder: Path, pattern: str) -> list[Path]:
    """Real folders before symlinks to them, so an install is named by its versioned folder."""
    try:
        entries = [p for p in folder.glob(pattern) if p.is_dir()]
    except OSError:
        return []
    return sorted(entries, key=lambda p: (p.is_symlink(), p.name))[:MAX_INSTALLS]


def _which(ctx: ProbeContext, name: str, windows: bool) -> str | None:
    for folder in ctx.env.get("PATH", "").split(";" if windows else ":"):
        if not folder:
            continue
        candidate = str(Path(folder) / name)
        real = ctx.path(candidate)
        if _is_file(real) and (windows or os.access(real, os.X_OK)):
            return candidate
    return None


def _resolve(ctx: ProbeContext, path: str) -> str:
    """`path` with symlinks followed, as a path on the (possibly fake) system root."""
    if Path(ctx.root) == Path("/"):
        return os.path.realpath(path)
    root = Path(ctx.root)
    pending = list(PurePosixPath(path).parts[1:])
    resolved = PurePosixPath("/")
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            resolved = resolved.parent
            continue
        candidate = resolved / part
        on_disk = root / str(candidate).lstrip("/")
        if on_disk.is_symlink() and hops < 40:
            hops += 1
            target = PurePosixPath(on_disk.readlink())
            if target.is_absolute():
                resolved = PurePosixPath("/")
                pending = list(target.parts[1:]) + pending
            else:
                pending = list(target.parts) + pending
            continue
        resolved = candidate
    return str(resolved)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def _first(base: Path, pattern: str) -> bool:
    try:
        return next(iter(base.glob(pattern)), None) is not None
    except OSError:
        return False


def _home(path: str) -> str:
    home = str(Path.home())
    return "~" + path[len(home) :] if home not in ("", "/") and path.startswith(home + os.sep) else path


def describe(facts: ToolkitFacts) -> Description:
    def line(install: CudaInstall) -> str:
        via = "PATH" if "PATH" in install.found_via else (install.found_via or ("?",))[0]
        how = "nvcc on PATH" if via == "PATH" else via
        version = f"CUDA {install.version}" if install.version else "CUDA (version unknown)"
        return f"{version} at {_home(install.path)} ({how})"

    details = tuple(f"{line(i)} · found via {', '.join(i.found_via)}" for i in facts.installs)
    if facts.nvcc_on_path:
        details += (f"nvcc on PATH: {facts.nvcc_on_path} ({facts.nvcc_version or facts.nvcc_error})",)
    if facts.ptxas_on_path:
        details += (f"ptxas on PATH: {facts.ptxas_on_path} ({facts.ptxas_version or facts.ptxas_error})",)
    if facts.cuda_home:
        details += (f"{facts.cuda_home_var or 'CUDA_HOME'}={facts.cuda_home}",)
    if not facts.installs:
        what = facts.nvcc_error or f"{facts.cuda_home_var}={facts.cuda_home} is not a CUDA toolkit"
        return Description(mark="warn", summary=f"no usable CUDA toolkit: {what}", details=details)
    active = next((i for i in facts.installs if i.path == facts.active), None)
    if len(facts.installs) == 1:
        summary = line(facts.installs[0])
    else:
        first = active or facts.installs[0]
        others = ", ".join(i.version or "?" for i in facts.installs if i is not first)
        summary = f"{len(facts.installs)} toolkits: {line(first)}; also {others}"
    mark: Mark = "warn" if facts.nvcc_error else "ok"
    return Description(mark=mark, summary=summary, details=details)


PROBE = Probe(name="toolkit", title="CUDA toolkit", collect=collect, describe=describe, timeout=20)
