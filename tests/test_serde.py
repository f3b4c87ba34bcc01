"""Facts round-trip through JSON; malformed documents fail with a path, not a traceback."""

from __future__ import annotations

import json
import re

import pytest

from gpudoctor.facts import Distribution, DriverFacts, Facts, GpuFacts, ProbeStatus, PythonFacts
from gpudoctor.serde import SerdeError, from_data, to_data


def test_round_trip() -> None:
    facts = Facts(
        driver=DriverFacts(
            nvml_state="ok",
            source="nvml",
            driver_version="535.104.05",
            cuda_driver_version="12.2",
            gpus=(GpuFacts(index=0, name="NVIDIA GeForce MX150", compute_capability="6.1", memory_mib=2048),),
        ),
        python=PythonFacts(
            version="3.11.7", distributions=(Distribution(name="tensorflow", version="2.15.1"),)
        ),
        probes=(ProbeStatus(name="driver", seconds=0.01),),
    )
    assert from_data(Facts, json.loads(json.dumps(to_data(facts)))) == facts


def test_partial_documents_take_defaults_and_ignore_unknown_keys() -> None:
    facts = from_data(Facts, {"driver": {"driver_version": "470.82.01"}, "from_the_future": 1})
    assert facts.driver is not None
    assert facts.driver.driver_version == "470.82.01"
    assert facts.driver.gpus == ()
    assert facts.tensorflow is None


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"driver": {"gpus": "not a list"}}, "$.driver.gpus"),
        ({"driver": {"nvml_state": "exploded"}}, "$.driver.nvml_state"),
        ({"driver": {"gpus": [{"index": "zero"}]}}, "$.driver.gpus[0].index"),
        ({"python": {"is_venv": "yes"}}, "$.python.is_venv"),
        ({"probes": [{"name": 3}]}, "$.probes[0].name"),
        ("a string", "$"),
    ],
)
def test_wrong_types_name_the_path(document: object, where: str) -> None:
    with pytest.raises(SerdeError, match=re.escape(where)):
        from_data(Facts, document)
