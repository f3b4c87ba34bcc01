"""The CUDA libraries probe with stand-in libraries built by gcc, run in the real target interpreter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gpudoctor.facts import LibrariesFacts, LibraryFile
from gpudoctor.prestart import script_source
from gpudoctor.probes import libraries
from gpudoctor.probes.base import ProbeUnavailable
from tests.conftest import load_child, make_ctx, write_executable

child = load_child("libraries")

needs_gcc = pytest.mark.skipif(
    shutil.which("gcc") is None or sys.platform != "linux", reason="stand-in libraries need gcc on Linux"
)

CUDART = "int cudaRuntimeGetVersion(int *version) {{ *version = {value}; return 0; }}\n"
CUDNN = "#include <stddef.h>\nsize_t cudnnGetVersion(void) {{ return {value}; }}\n"
NCCL = "int ncclGetVersion(int *version) {{ *version = {value}; return 0; }}\n"
SEGFAULT = "#include <signal.h>\nint cudaRuntimeGetVersion(int *version) { raise(SIGSEGV); return 0; }\n"


def build(
    folder: Path, soname: str, source: str, *, file_name: str | None = None, link: tuple[str, ...] = ()
) -> Path:
    """A shared library with the given soname; with file_name, the real file plus a soname symlink."""
    folder.mkdir(parents=True, exist_ok=True)
    src = folder.parent / f".{soname}.{folder.name}.c"
    src.write_text(source, encoding="utf-8")
    out = folder / (file_name or soname)
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(out), str(src), f"-Wl,-soname,{soname}", *link],
        check=True,
        capture_output=True,
    )
    if file_name:
        (folder / soname).symlink_to(file_name)
    return folder / soname


def run_probe(env: dict[str, str], **kwargs: object) -> LibrariesFacts:
    return libraries.collect(make_ctx(env=env, **kwargs))  # type: ignore[arg-type]


def find(facts: LibrariesFacts, path: Path | str) -> LibraryFile:
    wanted = os.path.realpath(path)
    matches = [f for f in facts.files if f.path and os.path.realpath(f.path) == wanted]
    assert matches, f"{path} not among {[f.path for f in facts.files]}"
    return matches[0]


@needs_gcc
def test_ld_library_path_copy_is_the_loader_default_and_answers_its_version(tmp_path: Path) -> None:
    lib = tmp_path / "cuda-11.8" / "lib64"
    build(lib, "libcudart.so.11.0", CUDART.format(value=11080), file_name="libcudart.so.11.8.89")
    build(lib, "libnccl.so.2", NCCL.format(value=21803), file_name="libnccl.so.2.18.3")

    facts = run_probe({"LD_LIBRARY_PATH": f"{lib}:{tmp_path / 'gone'}"})

    cudart = find(facts, lib / "libcudart.so.11.0")
    assert cudart == LibraryFile(
        kind="cudart",
        name="libcudart.so.11.0",
        path=str(lib / "libcudart.so.11.0"),
        location="ld_library_path",
        version="11.8",
        version_source="call",
        loader_default=True,
    )
    nccl = find(facts, lib / "libnccl.so.2")
    assert (nccl.kind, nccl.version, nccl.loader_default) == ("nccl", "2.18.3", True)
    assert facts.ld_library_path == (str(lib), str(tmp_path / "gone"))
    assert str(lib) in facts.searched
    assert len([f for f in facts.files if os.path.realpath(f.path) == str(lib / "libcudart.so.11.8.89")]) == 1


@needs_gcc
def test_conda_prefix_and_pip_wheel_copies_are_found_off_the_loader_path(tmp_path: Path) -> None:
    prefix = tmp_path / "envs" / "tf"
    (prefix / "conda-meta").mkdir(parents=True)
    build(prefix / "lib", "libcudnn.so.8", CUDNN.format(value=8907), file_name="libcudnn.so.8.9.7")
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    build(site / "nvidia" / "cudnn" / "lib", "libcudnn.so.9", CUDNN.format(value=90100))
    build(site / "nvidia" / "cu13" / "lib", "libcudart.so.13", CUDART.format(value=13000))

    facts = run_probe({"CONDA_PREFIX": str(prefix), "PYTHONPATH": str(site)})

    conda = find(facts, prefix / "lib" / "libcudnn.so.8")
    assert (conda.location, conda.version, conda.version_source, conda.loader_default) == (
        "conda",
        "8.9.7",
        "call",
        False,
    )
    wheel = find(facts, site / "nvidia" / "cudnn" / "lib" / "libcudnn.so.9")
    assert (wheel.location, wheel.version, wheel.loader_default) == ("pip-wheel", "9.1.0", False)
    cu13 = find(facts, site / "nvidia" / "cu13" / "lib" / "libcudart.so.13")
    assert (cu13.location, cu13.version) == ("pip-wheel", "13.0")
    summary = libraries.describe(facts).summary
    assert "libcudnn 8.9.7 only in conda, not on the loader path" in summary or "libcudnn 9.1.0" in summary


@needs_gcc
def test_a_library_that_segfaults_is_recorded_and_the_others_still_counted(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    build(lib, "libcudart.so.12", SEGFAULT)
    build(lib, "libcudnn.so.9", CUDNN.format(value=90300))

    facts = run_probe({"LD_LIBRARY_PATH": str(lib)})

    assert facts.search_error is None
    crashed = find(facts, lib / "libcudart.so.12")
    assert crashed.load_error is not None and "SIGSEGV" in crashed.load_error
    assert crashed.version == "12" and crashed.version_source == "file-name"
    cudnn = find(facts, lib / "libcudnn.so.9")
    assert (cudnn.version, cudnn.version_source, cudnn.loader_default) == ("9.3.0", "call", True)


@needs_gcc
def test_loader_default_with_a_missing_dependency_says_why(tmp_path: Path) -> None:
    dep = tmp_path / "dep"
    build(dep, "libcudnn_ops_infer.so.8", "int helper(void) { return 1; }\n")
    lib = tmp_path / "lib"
    build(
        lib,
        "libcudnn.so.8",
        CUDNN.format(value=8600),
        link=("-Wl,--no-as-needed", f"-L{dep}", "-l:libcudnn_ops_infer.so.8"),
    )
    shutil.rmtree(dep)

    facts = run_probe({"LD_LIBRARY_PATH": str(lib)})

    cudnn = find(facts, lib / "libcudnn.so.8")
    assert cudnn.loader_default is True
    assert cudnn.load_error is not None and "libcudnn_ops_infer.so.8" in cudnn.load_error
    assert "libcudnn fails to load" in libraries.describe(facts).summary


@pytest.mark.parametrize(
    ("header", "version", "source"),
    [
        (
            (
                "#define CUDNN_MAJOR 8\n#define CUDNN_MINOR 6\n#define CUDNN_PATCHLEVEL 0\n"
                "#define CUDNN_VERSION (CUDNN_MAJOR * 1000 + CUDNN_MINOR * 100 + CUDNN_PATCHLEVEL)\n"
            ),
            "8.6.0",
            "header",
        ),
        ("#define CUDNN_MAJOR eight\n\x00\xff not a header", "8", "file-name"),
        ("#define CUDNN_MAJOR 7\n#define CUDNN_MINOR 6\n#define CUDNN_PATCHLEVEL 5\n", "8", "file-name"),
    ],
)
def test_unloadable_cudnn_falls_back_to_header_then_file_name(
    tmp_path: Path, header: str, version: str, source: str
) -> None:
    root = tmp_path / "cudnn"
    (root / "lib").mkdir(parents=True)
    (root / "include").mkdir()
    (root / "lib" / "libcudnn.so.8").write_bytes(b"this is not an ELF file")
    (root / "include" / "cudnn_version.h").write_text(header, encoding="utf-8", errors="surrogateescape")

    facts = run_probe({"LD_LIBRARY_PATH": str(root / "lib")})

    cudnn = find(facts, root / "lib" / "libcudnn.so.8")
    assert (cudnn.version, cudnn.version_source) == (version, source)
    assert cudnn.load_error is not None


def test_child_that_prints_nothing_or_hangs_is_a_search_error(tmp_path: Path, bin_dir: Path) -> None:
    silent = write_executable(bin_dir, "python-silent", stdout="Python 3.11\n")
    facts = run_probe({}, python=str(silent))
    assert facts.files == () and facts.search_error is not None and "no result" in facts.search_error
    assert libraries.describe(facts).mark == "warn"

    hangs = write_executable(bin_dir, "python-hangs", sleep=30)
    facts = run_probe({}, python=str(hangs), child_timeout=0.5)
    assert facts.search_error is not None and "did not finish" in facts.search_error


def test_macos_has_no_cuda_libraries() -> None:
    with pytest.raises(ProbeUnavailable):
        libraries.collect(make_ctx(system="Darwin"))


def test_last_step_and_parse_files_distrust_the_child() -> None:
    stderr = "warning\n@@GPUDOCTOR-STEP@@ load libcudart.so.12\n@@GPUDOCTOR-STEP@@ call /x/libcudnn.so.9\nSegfault\n"
    assert libraries.last_step(stderr) == ("call", "/x/libcudnn.so.9")
    assert libraries.last_step("@@GPUDOCTOR-STEP@@ dance now\n@@GPUDOCTOR-STEP@@ load\n") is None
    data = {
        "files": [
            {
                "kind": "cudnn",
                "name": "libcudnn.so.9",
                "path": "/x/libcudnn.so.9",
                "real": "/x/libcudnn.so.9",
            },
            {
                "kind": "bogus",
                "location": "moon",
                "version": 12,
                "version_source": "guess",
                "loader_default": "yes",
            },
            "not a row",
        ]
    }
    files = libraries.parse_files(data, {"/x/libcudnn.so.9": "crashed the process (SIGSEGV) when loading it"})
    assert files[0].load_error == "crashed the process (SIGSEGV) when loading it"
    assert files[1] == LibraryFile(kind="other", location="other")
    assert len(files) == 2
    assert libraries.parse_files({"files": "nope"}, {}) == ()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cudart64_110.dll", ("cudart", "11")),
        ("cudart64_101.dll", ("cudart", "10.1")),
        ("cudart64_12.dll", ("cudart", "12")),
        ("cudart64_92.dll", ("cudart", "9.2")),
        ("cudnn64_8.dll", ("cudnn", "8")),
        ("cudnn64_9.dll", ("cudnn", "9")),
        ("cublas64_11.dll", ("cublas", "11")),
        ("nvrtc64_112_0.dll", ("nvrtc", "11")),
        ("CUFFT64_10.DLL", ("cufft", "10")),
        ("nvcuda.dll", ("libcuda", None)),
        ("cudnn_ops_infer64_8.dll", None),
        ("cublasLt64_12.dll", None),
        ("cudart64.dll", None),
        ("notes.txt", None),
    ],
)
def test_windows_dll_names(
    monkeypatch: pytest.MonkeyPatch, name: str, expected: tuple[str, str | None] | None
) -> None:
    monkeypatch.setattr(child, "WINDOWS", True)
    matched = child.match_name(name)
    if expected is None:
        assert matched is None
        return
    assert matched is not None and matched[0] == expected[0]
    assert child.file_name_version(expected[0], [name]) == expected[1]


@pytest.mark.parametrize(
    ("names", "kind", "version"),
    [
        (["libcudart.so.11.0", "libcudart.so.11.8.89"], "cudart", "11.8.89"),
        (["libcudart.so.11.0"], "cudart", "11"),
        (["libcudart.so.10.1"], "cudart", "10.1"),
        (["libcudart-e409df0c.so.11.0"], "cudart", "11"),
        (["libcudnn.so.8"], "cudnn", "8"),
        (["libcudnn.so.8.9.7"], "cudnn", "8.9.7"),
        (["libcublas.so.12.2.5.6"], "cublas", "12.2.5.6"),
        (["libcuda.so.1", "libcuda.so.535.104.05"], "libcuda", "535.104.05"),
        (["libcuda.so.1"], "libcuda", None),
        (["libnvidia-ml.so.1"], "nvml", None),
        (["libcudart.so"], "cudart", None),
    ],
)
def test_linux_file_name_versions(
    monkeypatch: pytest.MonkeyPatch, names: list[str], kind: str, version: str | None
) -> None:
    monkeypatch.setattr(child, "WINDOWS", False)
    assert child.file_name_version(kind, names) == version


def test_linux_names_and_version_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(child, "WINDOWS", False)
    assert child.match_name("libcudart.so.12") == ("cudart", "12")
    assert child.match_name("libnvidia-ml.so.1") == ("nvml", "1")
    assert child.match_name("libcuda.so") is None  # the link-time stub
    assert child.match_name("libcudart_static.a") is None
    assert child.match_name("libcudnn_ops_infer.so.8") is None
    assert child.match_name("libcudart.so.12.bak") is None
    assert child.decode_cudnn(8907) == "8.9.7"
    assert child.decode_cudnn(7605) == "7.6.5"
    assert child.decode_cudnn(90100) == "9.1.0"
    assert child.decode_cudnn(91002) == "9.10.2"
    assert child.decode_nccl(21803) == "2.18.3"
    assert child.decode_nccl(2408) == "2.4.8"


@pytest.mark.skipif(not Path("/usr/local/cuda-13.0/lib64/libcudart.so.13").exists(), reason="needs CUDA 13.0")
def test_real_toolkit_copy_on_this_machine() -> None:
    facts = run_probe({"PATH": os.environ.get("PATH", os.defpath)})
    cudart = find(facts, "/usr/local/cuda-13.0/lib64/libcudart.so.13")
    assert cudart.location == "cuda-toolkit"
    assert (cudart.version, cudart.version_source) == ("13.0", "call")
    assert cudart.path == "/usr/local/cuda-13.0/lib64/libcudart.so.13"


CUBLAS = (
    "int cublasGetProperty(int type, int *value) {{ *value = {parts}[type]; return 0; }}\n"
    "extern int cublasLtHelper(void);\nint use(void) {{ return cublasLtHelper(); }}\n"
)
# a library that costs `mib` MiB resident once loaded, as the big CUDA libraries do (their relocations)
RESIDENT = (
    "#include <string.h>\nstatic char pages[{mib} << 20];\n"
    "__attribute__((constructor)) static void touch(void) {{ memset(pages, 1, sizeof pages); }}\n"
)


def _wheel(site: Path, distribution: str, files: list[str]) -> None:
    """The dist-info pip writes for a wheel, listing its files in RECORD."""
    info = site / f"{distribution}.dist-info"
    info.mkdir(parents=True)
    (info / "RECORD").write_text("".join(f"{f},sha256=x,1\n" for f in files), encoding="utf-8")


@needs_gcc
def test_a_library_too_large_to_load_takes_its_version_from_its_wheel(tmp_path: Path) -> None:
    """libcublas needs the 0.5 GB libcublasLt: it is not loaded to be asked (issue #12), its wheel says."""
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    lib = site / "nvidia" / "cu13" / "lib"
    lt = build(lib, "libcublasLt.so.13", "int cublasLtHelper(void) { return 7; }\n")
    with lt.open("r+b") as handle:
        handle.truncate(520 << 20)  # as large as the real one, without the disk space (sparse)
    cublas = build(
        lib,
        "libcublas.so.13",
        CUBLAS.format(parts="(int[]){99, 99, 99}"),
        link=(f"-L{lib}", "-l:libcublasLt.so.13"),
    )
    build(lib, "libcudart.so.13", CUDART.format(value=13000))
    _wheel(
        site,
        "nvidia_cublas-13.1.1.3",
        ["nvidia/cu13/lib/libcublas.so.13", "nvidia/cu13/lib/libcublasLt.so.13"],
    )
    assert "libcublasLt.so.13" in child.needed(str(cublas))
    assert child.load_size(str(cublas)) > child.LOAD_LIMIT

    facts = run_probe({"PYTHONPATH": str(site)})

    found = find(facts, cublas)
    assert (found.version, found.version_source, found.load_error) == ("13.1.1.3", "package", None)
    cudart = find(facts, lib / "libcudart.so.13")
    assert (cudart.version, cudart.version_source) == ("13.0", "call")  # small: asked as before


@needs_gcc
def test_each_library_is_let_go_once_it_has_answered(tmp_path: Path) -> None:
    """Five libraries of 60 MiB resident each: the child's peak stays near one of them, not five."""
    lib = tmp_path / "lib"
    sources = {
        "libcudart.so.12": CUDART.format(value=12040),
        "libcudnn.so.9": CUDNN.format(value=90300),
        "libnccl.so.2": NCCL.format(value=21803),
        "libcufft.so.11": "int cufftGetProperty(int t, int *v) { *v = 11; return 0; }\n",
        "libcusparse.so.12": "int cusparseGetProperty(int t, int *v) { *v = 12; return 0; }\n",
    }
    for soname, source in sources.items():
        build(lib, soname, source + RESIDENT.format(mib=60))
    env = {**os.environ, "LD_LIBRARY_PATH": str(lib)}
    # A child's peak RSS counts the memory of the process that spawned it (fork, then exec keeps the
    # high-water mark): spawned from this test process, late in a long suite, it would read hundreds of
    # MiB whatever the child does. A small Python starts it and reports its peak instead.
    measure = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)\n"
        "sys.stdout.buffer.write(r.stdout)\n"
        "sys.stdout.write('\\nmaxrss_kib=%d' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", measure, sys.executable, "-c", script_source("libraries")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=True,
    )
    out, _, peak = ran.stdout.rpartition("\nmaxrss_kib=")
    assert '"version": "9.3.0"' in out and '"version": "12.4"' in out  # each answered
    assert int(peak) < 200 * 1024, f"peak {int(peak) // 1024} MiB: the libraries were kept loaded"
