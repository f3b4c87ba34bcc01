"""JAX as the target interpreter sees it: jax, jaxlib and plugin versions, devices, backend errors.

The import happens in a child process of the target interpreter (`probes/child/jax.py`) with the
user's environment as is: `JAX_PLATFORMS` stays unset unless the user set it, so JAX picks its
backend exactly as it does for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from gpudoctor import lazy_re
from gpudoctor.distributions import JAX
from gpudoctor.facts import FrameworkGpu, JaxFacts, JaxLibraryCheck
from gpudoctor.probes.base import Description, Mark, Probe, ProbeContext, ProbeUnavailable
from gpudoctor.probes.child_process import ChildRun, run_child, strings
from gpudoctor.probes.libnames import loaded_libraries
from gpudoctor.probes.python import absent
from gpudoctor.probes.torch import (
    channel_name,
    failure,
    mapping,
    signal_lines,
    stopped_early,
    text,
)

JAX_SIGNALS = (
    "CUDA-enabled jaxlib is not installed",
    "Jax plugin configuration error",  # hardware: the plugin's exception rides on the log record
    "backend failed to initialize",
    "Unable to initialize backend 'cuda'",
    "Unable to initialize backend 'rocm'",
    "Unable to initialize backend 'gpu'",
    "is not compatible with the installed jaxlib",
    "installation found",
    "Loaded runtime CuDNN library",
    "Unable to load",
    "compute capability",
    "No GPU/TPU found",
    "ptxas",
    "no kernel image",
    "DNN library initialization failed",
    "is experimental",
    "plugin configuration error",
    "Unable to use CUDA",
)

_OUTDATED = lazy_re.compile(
    r"Outdated (?P<name>[\w.]+) installation found\.?\s*"
    r"Version JAX was built against:\s*(?P<built>\d+)\s*"
    r"Minimum supported:\s*(?P<minimum>\d+)\s*"
    r"Installed version:\s*(?P<installed>\d+)"
)
_CUDNN_LOADED = lazy_re.compile(
    r"Loaded runtime CuDNN library:\s*(?P<installed>\d+(?:\.\d+)*).*?"
    r"(?:but )?source was compiled with:\s*(?P<built>\d+(?:\.\d+)*)",
    re.IGNORECASE | re.DOTALL,
)
_UNABLE_TO_LOAD = lazy_re.compile(r"Unable to load (?P<name>[\w.]+)\. Is it installed\?")
# jaxlib 0.4.17-0.4.2x (jax/_src/xla_bridge.py _check_cuda_versions), before "Outdated ... installation found"
# (hardware, #10.9): "Found cuDNN version 8600, but JAX was built against version 8907, which is newer."
_FOUND_OLDER = lazy_re.compile(
    r"Found (?P<name>[\w.]+) version (?P<installed>\d+), but JAX was built against version (?P<built>\d+)"
)


def decode_version(name: str, raw: str) -> str:
    """JAX prints CUDA component versions as the libraries encode them; make them dotted."""
    value = int(raw)
    lowered = name.lower()
    if lowered == "cuda":
        return f"{value // 1000}.{value % 1000 // 10}"
    if lowered == "cudnn":
        if value >= 10000:
            return f"{value // 10000}.{value % 10000 // 100}.{value % 100}"
        return f"{value // 1000}.{value % 1000 // 100}.{value % 100}"
    if lowered == "cublas" and value >= 100000:
        return f"{value // 10000}.{value % 10000 // 100}.{value % 100}"
    if lowered in ("cufft", "cusolver", "cusparse") and value >= 1000:
        return f"{value // 1000}.{value % 1000 // 100}.{value % 100}"
    return raw


def library_checks(texts: Iterable[str]) -> tuple[JaxLibraryCheck, ...]:
    checks: dict[str, JaxLibraryCheck] = {}
    for blob in texts:
        for m in _OUTDATED.finditer(blob):
            name = m["name"]
            checks.setdefault(
                name.lower(),
                JaxLibraryCheck(
                    name=name,
                    installed=decode_version(name, m["installed"]),
                    minimum=decode_version(name, m["minimum"]),
                    built=decode_version(name, m["built"]),
                ),
            )
        for m in _CUDNN_LOADED.finditer(blob):
            checks.setdefault(
                "cudnn",
                JaxLibraryCheck(name="cuDNN", installed=m["installed"], minimum=m["built"], built=m["built"]),
            )
        for m in _FOUND_OLDER.finditer(blob):
            name, built = m["name"], decode_version(m["name"], m["built"])
            checks.setdefault(
                name.lower(),
                JaxLibraryCheck(
                    name=name, installed=decode_version(name, m["installed"]), minimum=built, built=built
                ),
            )
        for m in _UNABLE_TO_LOAD.finditer(blob):
            checks.setdefault(m["name"].lower(), JaxLibraryCheck(name=m["name"]))
    return tuple(checks.values())


def collect(ctx: ProbeContext) -> JaxFacts:
    if absent(ctx, JAX):
        raise ProbeUnavailable("JAX is not installed")
    run = run_child(ctx, "jax")
    if run.data is None:
        if run.result.error == "not-found":
            raise ProbeUnavailable(f"the target interpreter {ctx.target.python} does not exist")
        return JaxFacts(probe_error=run.problem or "the probe script printed no result")
    return parse(run.data, run)


def parse(data: Mapping[str, Any], run: ChildRun) -> JaxFacts:
    if data.get("installed") is not True:
        raise ProbeUnavailable("JAX is not installed")
    imported = data.get("imported") is True
    import_error = text(data.get("import_error"))
    backend_errors = mapping(data.get("backend_errors"))
    backend_error = (
        text(data.get("backend_error"))
        or text(backend_errors.get("cuda"))
        or text(backend_errors.get("rocm"))
    )
    if data.get("stage") != "done" and stopped_early(run):
        if not imported:
            import_error = import_error or failure(run, "import jax")
        else:
            backend_error = backend_error or failure(run, "initialising JAX's backends")
    plugins = {str(k): v for k, v in mapping(data.get("plugins")).items() if isinstance(v, str)}
    conda = mapping(data.get("conda_jaxlib"))
    messages = (*strings(data.get("warnings")), *run.log_lines)
    texts = (*messages, backend_error or "", import_error or "", *(str(v) for v in backend_errors.values()))
    return JaxFacts(
        installed=True,
        imported=imported,
        import_error=import_error,
        jax_version=text(data.get("jax_version")),
        jaxlib_version=text(data.get("jaxlib_version")),
        module_path=text(data.get("module_path")),
        plugins=plugins,
        devices=strings(data.get("devices")),
        default_backend=text(data.get("default_backend")),
        backend_error=backend_error,
        warnings=signal_lines(messages, JAX_SIGNALS),
        loaded_libraries=loaded_libraries(data.get("loaded_libraries")),
        library_checks=library_checks(texts),
        jaxlib_conda_build=text(conda.get("build")),
        jaxlib_conda_channel=channel_name(str(conda.get("channel") or "")) or None,
        gpu_devices=gpu_devices(data.get("gpu_devices")),
    )


def gpu_devices(raw: object) -> tuple[FrameworkGpu, ...]:
    """The child's GPU device identities (kind, compute capability, CUDA ordinal), well-formed ones only."""
    found = []
    for item in raw if isinstance(raw, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("index"), int):
            continue
        name, capability, ordinal = item.get("name"), item.get("compute_capability"), item.get("cuda_ordinal")
        found.append(
            FrameworkGpu(
                index=item["index"],
                cuda_ordinal=ordinal if isinstance(ordinal, int) and ordinal >= 0 else None,
                name=name.strip()[:200] if isinstance(name, str) and name.isprintable() else "",
                compute_capability=capability
                if isinstance(capability, str) and re.fullmatch(r"\d+\.\d+", capability)
                else None,
            )
        )
    return tuple(found)


def describe(facts: JaxFacts) -> Description:
    if facts.probe_error:
        return Description(mark="warn", summary=f"could not be examined: {facts.probe_error}")
    parts = [f"JAX {facts.jax_version or '?'}", f"jaxlib {facts.jaxlib_version or 'not installed'}"]
    # A PJRT package at its plugin's version is part of the plugin; show it only when it differs.
    parts += [
        f"{name} {version}"
        for name, version in sorted(facts.plugins.items())
        if not name.endswith("-pjrt") or facts.plugins.get(name[: -len("pjrt")] + "plugin") != version
    ]
    details = tuple(
        x
        for x in (
            f"module: {facts.module_path}" if facts.module_path else "",
            f"conda jaxlib: {facts.jaxlib_conda_channel or ''} {facts.jaxlib_conda_build}".strip()
            if facts.jaxlib_conda_build
            else "",
            f"backend error: {facts.backend_error}" if facts.backend_error else "",
            *facts.warnings,
            *(f"loaded: {lib.path}" for lib in facts.loaded_libraries),
        )
        if x
    )
    if not facts.imported:
        summary = " · ".join(parts) + f" · fails to import: {facts.import_error or 'unknown error'}"
        return Description(mark="fail", summary=summary, details=details)
    parts.append(f"devices: {', '.join(facts.devices)}" if facts.devices else "no devices")
    gpu = any(not d.startswith("cpu") for d in facts.devices)
    mark: Mark = "ok" if gpu or not (facts.backend_error or facts.warnings) else "warn"
    return Description(mark=mark, summary=" · ".join(parts), details=details)


PROBE = Probe(name="jax", title="JAX", collect=collect, describe=describe, timeout=3600)
