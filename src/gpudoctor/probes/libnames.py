"""CUDA library file names: which kind of library a file is, wherever a probe met it."""

from __future__ import annotations

import re

from gpudoctor.facts import LibraryKind, LoadedLibrary

LIBRARY_KINDS: tuple[tuple[str, LibraryKind], ...] = (
    ("libcudart", "cudart"),
    ("cudart64", "cudart"),
    ("libcudnn", "cudnn"),
    ("cudnn64", "cudnn"),
    ("libcublas", "cublas"),
    ("cublas64", "cublas"),
    ("cublaslt64", "cublas"),
    ("libcufft", "cufft"),
    ("cufft64", "cufft"),
    ("libcusolver", "cusolver"),
    ("cusolver64", "cusolver"),
    ("libcusparse", "cusparse"),
    ("cusparse64", "cusparse"),
    ("libnccl", "nccl"),
    ("libnvrtc", "nvrtc"),
    ("nvrtc64", "nvrtc"),
    ("libcuda.so", "libcuda"),
    ("nvcuda", "libcuda"),
    ("libnvidia-ml", "nvml"),
    ("nvml", "nvml"),
)


def library_kind(path_or_name: str) -> LibraryKind:
    """What kind of CUDA library a file is, from its name (libcublasLt counts as cublas)."""
    name = re.split(r"[\\/]", path_or_name)[-1].lower()
    return next((kind for prefix, kind in LIBRARY_KINDS if name.startswith(prefix.lower())), "other")


def loaded_libraries(paths: object) -> tuple[LoadedLibrary, ...]:
    """Facts for the library paths a child process reported as loaded (from /proc/self/maps)."""
    if not isinstance(paths, list):
        return ()
    return tuple(LoadedLibrary(path=p, kind=library_kind(p)) for p in paths if isinstance(p, str) and p)
