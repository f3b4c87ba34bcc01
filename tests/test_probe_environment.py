"""The environment probe: the variables that change what a GPU program sees, and nothing else."""

from __future__ import annotations

import os

from gpudoctor.probes import environment
from tests.conftest import make_ctx


def test_watched_variables_are_kept_and_others_left_out() -> None:
    ctx = make_ctx(
        env={
            "NVIDIA_VISIBLE_DEVICES": "all",
            "NVIDIA_DRIVER_CAPABILITIES": "utility",
            "CUDA_VISIBLE_DEVICES": "1",
            "AWS_SECRET_ACCESS_KEY": "not ours to read",
            "EDITOR": "vim",
        }
    )
    facts = environment.collect(ctx)
    assert facts.variables["NVIDIA_DRIVER_CAPABILITIES"] == "utility"
    assert facts.variables["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert facts.variables["CUDA_VISIBLE_DEVICES"] == "1"
    assert "AWS_SECRET_ACCESS_KEY" not in facts.variables and "EDITOR" not in facts.variables
    described = environment.describe(facts)
    assert "CUDA_VISIBLE_DEVICES='1'" in described.summary


def test_this_machine() -> None:
    facts = environment.collect(make_ctx(env=dict(os.environ)))
    assert set(facts.variables) <= set(environment.WATCHED)
    assert facts.variables.get("PATH") == os.environ.get("PATH")
    assert environment.describe(facts).mark == "ok"
