"""Which ptxas XLA will run for JAX (hardware, QA case 4), per jaxlib release, from the machine's facts.

jaxlib / jax-cuda12-pjrt up to 0.4.23 run the first ptxas on PATH; from 0.4.24 JAX's own folder
(CUDA_ROOT, else the nvidia-cuda-nvcc wheel) comes first and ptxas older than 11.8 is passed over
(openxla/xla PR #7884; the strings of jax-cuda12-pjrt 0.4.23 and 0.4.24's xla_cuda_plugin.so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gpudoctor.facts import Facts
from gpudoctor.matrix import load_matrix
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.views import jax_ptxas
from gpudoctor.serde import from_data

MACHINES = Path(__file__).parent / "machines"
OLD = MACHINES / "hw-jax-0.4.18-system-ptxas-first-on-path-ada.yaml"


def context(edit: Any = None) -> RuleContext:
    slots = yaml.safe_load(OLD.read_text(encoding="utf-8"))["facts"]
    if edit is not None:
        edit(slots)
    return RuleContext(from_data(Facts, slots), load_matrix())


def set_jaxlib(version: str) -> Any:
    def edit(slots: dict[str, Any]) -> None:
        slots["jax"]["jaxlib_version"] = version
        for dist in slots["python"]["distributions"]:
            if dist["name"] == "jaxlib":
                dist["version"] = version

    return edit


def test_jaxlib_0_4_23_runs_the_first_ptxas_on_path() -> None:
    choice = jax_ptxas(context(set_jaxlib("0.4.23+cuda12.cudnn89")))
    assert choice is not None and choice.path_first
    assert (choice.chosen.path, choice.chosen.version, choice.chosen.source) == (
        "/usr/bin/ptxas",
        "11.5.119",
        "PATH",
    )
    assert [p.source for p in choice.passed_over] == ["nvidia-cuda-nvcc wheel", "/usr/local/cuda"]


def test_jaxlib_0_4_24_runs_the_wheel_first_and_passes_over_old_ptxas() -> None:
    choice = jax_ptxas(context(set_jaxlib("0.4.24+cuda12.cudnn89")))
    assert choice is not None and not choice.path_first
    assert choice.chosen.source == "nvidia-cuda-nvcc wheel" and choice.chosen.version == "12.2.140"
    assert choice.chosen.path.endswith("/site-packages/nvidia/cuda_nvcc/bin/ptxas")
    # ptxas 11.5 is older than XLA's 11.8 floor: never taken; /usr/local/cuda's comes last
    assert [p.path for p in choice.passed_over] == ["/usr/local/cuda/bin/ptxas"]

    def without_wheel(slots: dict[str, Any]) -> None:
        set_jaxlib("0.4.24")(slots)
        slots["python"]["distributions"] = [
            d for d in slots["python"]["distributions"] if d["name"] != "nvidia-cuda-nvcc-cu12"
        ]
        slots["toolkit"]["ptxas_version"] = "12.3.103"  # the release XLA skips

    fallback = jax_ptxas(context(without_wheel))
    assert fallback is not None and fallback.chosen.source == "/usr/local/cuda"
    assert fallback.chosen.version == "12.2.140" and fallback.passed_over == ()


def test_the_pjrt_plugin_version_decides_over_jaxlib() -> None:
    def plugin(slots: dict[str, Any]) -> None:
        slots["jax"]["plugins"] = {"jax-cuda12-plugin": "0.4.23", "jax-cuda12-pjrt": "0.4.23"}
        set_jaxlib("0.4.23")(slots)

    choice = jax_ptxas(context(plugin))
    assert choice is not None and choice.path_first and choice.xla_version == "0.4.23"


def test_cuda_root_is_jax_s_own_folder() -> None:
    def cuda_root(slots: dict[str, Any]) -> None:
        set_jaxlib("0.4.31")(slots)
        slots["environment"]["variables"]["CUDA_ROOT"] = "/opt/cuda-12.6"
        slots["python"]["cuda_roots"].append(
            {
                "via": "CUDA_ROOT",
                "path": "/opt/cuda-12.6",
                "ptxas": True,
                "libdevice": True,
                "version": "12.6.85",
            }
        )

    choice = jax_ptxas(context(cuda_root))
    assert choice is not None and choice.chosen.source == "CUDA_ROOT"
    assert (choice.chosen.path, choice.chosen.version) == ("/opt/cuda-12.6/bin/ptxas", "12.6.85")


def test_older_facts_fall_back_to_the_nvcc_on_path() -> None:
    def old_facts(slots: dict[str, Any]) -> None:
        del slots["toolkit"]["ptxas_on_path"], slots["toolkit"]["ptxas_version"]
        slots["python"]["cuda_roots"] = []

    choice = jax_ptxas(context(old_facts))
    assert choice is not None
    assert (choice.chosen.path, choice.chosen.version, choice.chosen.version_from) == (
        "/usr/bin/ptxas",
        "11.5.119",
        "the nvcc beside it on PATH",
    )


def test_no_jaxlib_version_says_nothing() -> None:
    def unknown(slots: dict[str, Any]) -> None:
        slots["jax"]["jaxlib_version"] = None
        slots["python"]["distributions"] = [
            d for d in slots["python"]["distributions"] if d["name"] != "jaxlib"
        ]

    assert jax_ptxas(context(unknown)) is None
    assert jax_ptxas(context(set_jaxlib("not a version"))) is None
