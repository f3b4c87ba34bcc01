"""Framework pins evaluated for the target interpreter, on the real Requires-Dist lines of released wheels."""

from __future__ import annotations

from pathlib import Path

from gpudoctor.facts import Distribution, FileOwner, PythonFacts, SharedFile
from gpudoctor.requirements import environment, framework_pins, resolve

METADATA = Path(__file__).parent / "outputs" / "metadata"
LINUX = {
    "platform_system": "Linux",
    "sys_platform": "linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}
WINDOWS = {
    "platform_system": "Windows",
    "sys_platform": "win32",
    "platform_machine": "AMD64",
    "os_name": "nt",
}


def requires(name: str) -> tuple[str, ...]:
    return tuple(METADATA.joinpath(f"{name}.requires.txt").read_text(encoding="utf-8").splitlines())


def dist(name: str, version: str, lines: tuple[str, ...] = ()) -> Distribution:
    return Distribution(name=name, version=version, requires=lines)


TORCH = dist("torch", "2.14.1", requires("torch-2.14.1"))
CUDA_TOOLKIT = dist("cuda-toolkit", "13.0.3.0", requires("cuda-toolkit-13.0.3.0"))
TENSORFLOW = dist("tensorflow", "2.21.0", requires("tensorflow-2.21.0"))
TORCH_WHEELS = (
    dist("nvidia-cublas", "13.1.1.3"),
    dist("nvidia-cuda-nvrtc", "13.0.88"),
    dist("nvidia-cuda-runtime", "13.0.96"),
    dist("nvidia-cuda-cupti", "13.0.85"),
    dist("nvidia-cufft", "12.0.0.61"),
    dist("nvidia-cufile", "1.15.1.6"),
    dist("nvidia-curand", "10.4.0.35"),
    dist("nvidia-cusolver", "12.0.4.66"),
    dist("nvidia-cusparse", "12.6.3.3"),
    dist("nvidia-nvjitlink", "13.4.92"),
    dist("nvidia-nvtx", "13.0.85"),
    dist("nvidia-cudnn-cu13", "9.24.0.43"),
    dist("nvidia-cusparselt-cu13", "0.8.1"),
    dist("nvidia-nccl-cu13", "2.30.7"),
    dist("nvidia-nvshmem-cu13", "3.4.5"),
    dist("cuda-bindings", "13.5.0"),
    dist("triton", "3.8.0"),
    CUDA_TOOLKIT,
)
TF_WHEELS = tuple(
    dist(name, version)
    for name, version in (
        ("nvidia-cublas-cu12", "12.9.3.13"),
        ("nvidia-cuda-cupti-cu12", "12.9.79"),
        ("nvidia-cuda-nvcc-cu12", "12.9.86"),
        ("nvidia-cuda-nvrtc-cu12", "12.9.86"),
        ("nvidia-cuda-runtime-cu12", "12.9.79"),
        ("nvidia-cudnn-cu12", "9.28.0.42"),
        ("nvidia-cufft-cu12", "11.4.1.4"),
        ("nvidia-curand-cu12", "10.3.10.19"),
        ("nvidia-cusolver-cu12", "11.7.5.82"),
        ("nvidia-cusparse-cu12", "12.5.10.65"),
        ("nvidia-nccl-cu12", "2.32.3"),
        ("nvidia-nvjitlink-cu12", "12.9.86"),
        ("numpy", "2.4.1"),
        ("protobuf", "6.33.0"),
        ("ml-dtypes", "0.5.3"),
    )
)


def facts(*dists: Distribution, env: dict[str, str] | None = None, **kwargs: object) -> PythonFacts:
    return PythonFacts(
        version="3.11.7",
        distributions=tuple(sorted(dists, key=lambda d: d.name)),
        marker_environment=env if env is not None else LINUX,
        **kwargs,  # type: ignore[arg-type]
    )


def states(python: PythonFacts, framework: str) -> dict[str, str]:
    pins = next(fw for fw in framework_pins(python) if fw.framework == framework)
    return {p.spec_text: p.state for p in pins.pins}


def test_torch_without_its_wheels_lists_each_pin_as_missing() -> None:
    got = states(facts(TORCH), "torch")
    assert got == {
        "cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.3": "missing",
        "cuda-bindings<14,>=13.0.3": "missing",
        "nvidia-cudnn-cu13==9.24.0.43": "missing",
        "nvidia-cusparselt-cu13==0.8.1": "missing",
        "nvidia-nccl-cu13==2.30.7": "missing",
        "nvidia-nvshmem-cu13==3.4.5": "missing",
        "triton~=3.8.0": "missing",
    }


def test_torch_pins_follow_cuda_toolkit_extras() -> None:
    wheels = (*tuple(d for d in TORCH_WHEELS if d.name != "nvidia-cublas"), dist("nvidia-cublas", "13.1.0.3"))
    pins = next(fw for fw in framework_pins(facts(TORCH, *wheels)) if fw.framework == "torch")
    unmet = {p.name: (p.state, p.via) for p in pins.unmet}
    assert unmet == {
        "nvidia-cublas": (
            "too-old",
            "cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.3",
        )
    }
    resolution = resolve(framework_pins(facts(TORCH, *wheels)))
    # The wheel comes only through cuda-toolkit's extras: restore it with torch's own line.
    assert resolution.specs == (
        "cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.3",
    )


def test_healthy_torch_has_no_unmet_pin() -> None:
    assert all(not fw.unmet for fw in framework_pins(facts(TORCH, *TORCH_WHEELS)))


def test_linux_only_pins_do_not_apply_on_windows() -> None:
    assert states(facts(TORCH, env=WINDOWS), "torch") == {}


def test_and_cuda_counts_only_when_its_wheels_are_installed() -> None:
    without = states(facts(TENSORFLOW, *TF_WHEELS[-3:]), "tensorflow")
    assert not any(name.startswith("nvidia-") for name in without)
    some = tuple(d for d in TF_WHEELS if d.name != "nvidia-cudnn-cu12")
    with_extra = states(facts(TENSORFLOW, *some), "tensorflow")
    assert with_extra["nvidia-cudnn-cu12<10.0,>=9.3.0.75"] == "missing"
    assert with_extra["nvidia-cublas-cu12<13.0,>=12.5.3.2"] == "ok"
    pin = next(
        p for fw in framework_pins(facts(TENSORFLOW, *some)) for p in fw.pins if p.name == "nvidia-cudnn-cu12"
    )
    assert pin.asked_by == "tensorflow[and-cuda]"


def test_too_new_and_too_old() -> None:
    wheels = [d for d in TF_WHEELS if d.name not in ("nvidia-cudnn-cu12", "nvidia-cublas-cu12")]
    got = states(
        facts(
            TENSORFLOW, *wheels, dist("nvidia-cudnn-cu12", "10.1.0.1"), dist("nvidia-cublas-cu12", "12.4.0.1")
        ),
        "tensorflow",
    )
    assert got["nvidia-cudnn-cu12<10.0,>=9.3.0.75"] == "too-new"
    assert got["nvidia-cublas-cu12<13.0,>=12.5.3.2"] == "too-old"


def test_two_exact_pins_that_differ_have_no_single_set() -> None:
    vision = dist("torchvision", "0.29.1", ("torch==2.14.0",))
    resolution = resolve(framework_pins(facts(TORCH, *TORCH_WHEELS, vision)))
    assert resolution.specs == ("torch==2.14.0",)  # torchvision's pin decides: one set exists
    assert resolution.conflicts == ()
    other = dist("torchaudio", "2.14.1", ("torch==2.14.1",))
    resolution = resolve(framework_pins(facts(TORCH, *TORCH_WHEELS, vision, other)))
    assert resolution.conflicts and "no torch satisfies every framework" in resolution.conflicts[0]


def test_cuda12_and_cuda13_wheels_of_one_library_cannot_share_a_venv() -> None:
    python = facts(TENSORFLOW, *TF_WHEELS, TORCH, *TORCH_WHEELS)
    assert all(not fw.unmet for fw in framework_pins(python))  # pip check is clean...
    resolution = resolve(framework_pins(python), python)
    assert any("nvidia-cudnn-cu12" in c and "nvidia-cudnn-cu13" in c for c in resolution.conflicts)
    # ...and with no file lost yet, the framework with the later rank moves.
    assert resolution.move == "torch"
    lost = SharedFile(
        path="/v/nvidia/cudnn/lib/libcudnn.so.9",
        owners=(
            FileOwner(distribution="nvidia-cudnn-cu12", size=137432, matches=False),
            FileOwner(distribution="nvidia-cudnn-cu13", size=129240, matches=True),
        ),
        disk_size=129240,
    )
    python = facts(TENSORFLOW, *TF_WHEELS, TORCH, *TORCH_WHEELS, shared_files=(lost,))
    assert resolve(framework_pins(python), python).move == "tensorflow"  # its cuDNN lost on disk


def test_environment_defaults_and_target_values() -> None:
    env = environment(PythonFacts(version="3.12.4", marker_environment={"sys_platform": "darwin"}))
    assert env["python_version"] == "3.12" and env["python_full_version"] == "3.12.4"
    assert env["sys_platform"] == "darwin"
    assert environment(None)["platform_system"] == "Linux"


def test_bad_requirement_lines_are_ignored() -> None:
    broken = dist(
        "torch", "2.14.1", ("nvidia-cudnn-cu13==", "@@@", "triton ~= 3.8.0 ; python_version <", "numpy>=1")
    )
    assert states(facts(broken, dist("numpy", "2.4.1")), "torch") == {"numpy>=1": "ok"}
    odd = dist("torch", "2.14.1", ("numpy>=1",))
    assert states(facts(odd, dist("numpy", "not a version")), "torch") == {"numpy>=1": "ok"}


def test_library_cuda_major_from_wheel_folder_and_soname() -> None:
    from gpudoctor.rules.pythonenv import library_cuda_major

    site = "/v/lib/python3.11/site-packages/nvidia"
    assert library_cuda_major(f"{site}/cudnn/lib/libcudnn.so.9", "nvidia-cudnn-cu12") == 12
    assert library_cuda_major(f"{site}/cu13/lib/libcusparse.so.12", "nvidia-cusparse") == 13
    assert library_cuda_major("/usr/local/cuda-12.2/lib64/libcudart.so.12", None) == 12
    assert library_cuda_major("/usr/lib/x86_64-linux-gnu/libcufft.so.11", None) == 12
    assert (
        library_cuda_major("/usr/lib/x86_64-linux-gnu/libcudnn.so.9", None) is None
    )  # cuDNN 9: CUDA 12 or 13
    assert library_cuda_major("/usr/lib/libcusolver.so.11", None) is None  # CUDA 11 and 12 both ship .so.11


JAX = dist("jax", "0.10.2", requires("jax-0.10.2"))
JAX_CUDA12 = dist("jax-cuda12-plugin", "0.10.2", requires("jax-cuda12-plugin-0.10.2"))
JAXLIB = dist("jaxlib", "0.10.2")


def test_jax_cuda12_local_is_not_taken_for_jax_cuda12() -> None:
    """`jax[cuda12-local]` and `jax[cuda12]` add the same plugin, the latter with its `[with-cuda]` wheels:
    without those wheels only cuda12-local is in use, so no nvidia-* pin is reported missing; and
    `jax[minimum-jaxlib]` (jaxlib==0.10.1) only narrows the jaxlib every jax needs, so it is not in use."""
    companions = (dist("jax-cuda12-pjrt", "0.10.2"), dist("numpy", "2.3.5"), dist("ml-dtypes", "0.5.4"))
    local = states(facts(JAX, JAXLIB, JAX_CUDA12, *companions), "jax")
    assert not any(name.startswith("nvidia-") for name in local), local
    assert "jaxlib==0.10.1" not in local and "jax-cuda13-plugin<=0.10.2,>=0.10.2" not in local
    assert all(state == "ok" for state in local.values()), local


def test_jax_cuda12_with_most_of_its_wheels_reports_the_missing_one() -> None:
    wheels = [
        dist(name, "12.9.0")
        for line in requires("jax-cuda12-plugin-0.10.2")
        if (name := line.split(">=")[0].split("<")[0]).startswith("nvidia-")
        and name != "nvidia-cuda-nvcc-cu12"
    ]
    found = states(facts(JAX, JAXLIB, JAX_CUDA12, dist("jax-cuda12-pjrt", "0.10.2"), *wheels), "jax")
    assert found["nvidia-cuda-nvcc-cu12>=12.6.85"] == "missing"
