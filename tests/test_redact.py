"""Redaction: nothing that identifies the person or machine in shared output; the same findings on replay."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from gpudoctor.engine import diagnose
from gpudoctor.facts import (
    CondaFacts,
    CondaPackage,
    Distribution,
    DriverFacts,
    EnvironmentFacts,
    Facts,
    GpuFacts,
    ProbeStatus,
    PythonFacts,
    TargetFacts,
    TensorFlowFacts,
)
from gpudoctor.matrix import load_matrix
from gpudoctor.redact import Identity, Redactor, redact, redact_facts, redact_text
from gpudoctor.serde import from_data, to_data
from tests.test_machines import load_machine, machine_files

ME = Identity(
    home="/home/zqx",
    users=("zqx", "alice"),
    homes=("/home/zqx", "/home/alice"),
    hosts=("gpubox-17.lab.example.org", "gpubox-17"),
)
UUID = "GPU-8f2d3c4b-1a2b-3c4d-5e6f-0123456789ab"


def dumped(facts: Facts) -> str:
    return json.dumps(to_data(facts), ensure_ascii=False)


def test_home_is_replaced_only_at_a_path_boundary() -> None:
    text = "/home/zqx/lib:/home/zqxuser2/lib:/mnt/home/zqx2:/home/zqx"
    assert redact(text, home="/home/zqx") == "~/lib:/home/zqxuser2/lib:/mnt/home/zqx2:~"
    assert redact_text(text, ME, terminal=True) == "~/lib:/home/zqxuser2/lib:/mnt/home/zqx2:~"
    assert redact_text(text, ME) == "~/lib:/home/zqxuser2/lib:/mnt/home/zqx2:~"
    assert redact({"a": ["/home/zqx/x"]}, home="/home/zqx") == {"a": ["~/x"]}
    assert redact("/home/zqx/x", home="/root") == "/home/zqx/x"


def test_terminal_level_keeps_everything_but_the_home_folder() -> None:
    text = f"/home/zqx/env {UUID} on gpubox-17 as zqx"
    assert redact_text(text, ME, terminal=True) == f"~/env {UUID} on gpubox-17 as zqx"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CONDA_DEFAULT_ENV=zqx-env", "CONDA_DEFAULT_ENV=<user>-env"),
        ("/scratch/zqx/envs/tf/bin", "/scratch/<user>/envs/tf/bin"),
        ("/home/alice/.local/lib", "/home/<user2>/.local/lib"),
        ("C:\\Users\\alice\\AppData\\x", "C:\\Users\\<user2>\\AppData\\x"),
        ("I0101 gpubox-17 tensorflow/core ...", "I0101 <host> tensorflow/core ..."),
        ("gpubox-17.lab.example.org:8888", "<host>:8888"),
        (f"CUDA_VISIBLE_DEVICES={UUID}", "CUDA_VISIBLE_DEVICES=GPU-…89ab"),
        ("MIG-GPU-8f2d3c4b-1a2b-3c4d-5e6f-0123456789ab/1/0", "MIG-GPU-…89ab/1/0"),
        ("Serial Number : 1324021034567", "Serial Number : …4567"),
        ("https://bob:hunter2@pypi.example.com/simple", "https://<redacted>@pypi.example.com/simple"),
        ("https://h/simple?token=abc123&x=1", "https://h/simple?token=<redacted>&x=1"),
        (
            "https://conda.anaconda.org/t/ab-12345678-cdef/nvidia",
            "https://conda.anaconda.org/t/<redacted>/nvidia",
        ),
        ("/opt/ghp_abcdefghijklmnopqrstuvwxyz0123/bin:/usr/bin", "/opt/<redacted>/bin:/usr/bin"),
        ("/tmp/aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vWxyz/lib", "/tmp/<redacted>/lib"),
        # What is not private stays: versions, build strings, hashes, library names, shared folders.
        ("/usr/local/cuda-12.2/lib64/libcudart.so.12", "/usr/local/cuda-12.2/lib64/libcudart.so.12"),
        ("torch-2.1.0+cu121 cuda112py39h9333c2f_1", "torch-2.1.0+cu121 cuda112py39h9333c2f_1"),
        ("/root/.vscode-server/bin/e170252f762678dec6ca2cc69aba1570769a5d39", None),
        ("libcudart-9335f6a2.so.12 zqxuser2 alicea", None),
    ],
)
def test_shared_level_hides_people_machines_and_secrets(text: str, expected: str | None) -> None:
    assert redact_text(text, ME) == (text if expected is None else expected)


def planted_facts() -> Facts:
    return Facts(
        target=TargetFacts(python="/home/zqx/miniconda3/envs/zqx-env/bin/python", cwd="/home/zqx/project"),
        driver=DriverFacts(
            nvml_state="ok", driver_version="535.104.05", gpus=(GpuFacts(index=0, name="NVIDIA A100"),)
        ),
        environment=EnvironmentFacts(
            variables={
                "CUDA_VISIBLE_DEVICES": UUID,
                "CONDA_DEFAULT_ENV": "zqx-env",
                "PYTHONPATH": "/home/zqx/src:/home/zqxuser2/lib",
                "LD_LIBRARY_PATH": "/opt/hf_abcdefghijklmnopqrstuvwx/lib:/usr/local/cuda/lib64",
                "HF_TOKEN": "hf_abcdefghijklmnopqrstuvwx",
                "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "PIP_INDEX_URL": "https://zqx:s3cr3t@pypi.example.com/simple",
            }
        ),
        conda=CondaFacts(
            prefix="/home/zqx/miniconda3/envs/zqx-env",
            env_name="zqx-env",
            packages=(
                CondaPackage(
                    name="cudnn",
                    version="8.9.2",
                    build="h1",
                    channel="https://conda.anaconda.org/t/tk-123456789/nvidia",
                ),
            ),
        ),
        python=PythonFacts(
            executable="/home/zqx/miniconda3/envs/zqx-env/bin/python",
            version="3.11.7",
            distributions=(
                Distribution(
                    name="torch", version="2.3.1", location="/home/ana/.venv/lib/python3.11/site-packages"
                ),
            ),
        ),
        tensorflow=TensorFlowFacts(
            installed=True,
            log_lines=("2025-01-01 12:00:00.0 I gpubox-17 external/local_xla/xla/stream_executor/cuda ...",),
            distributions={"tensorflow": "2.15.1"},
        ),
        probes=(ProbeStatus(name="torch", state="timeout", detail="/home/zqx/miniconda3 python hung"),),
    )


def test_redact_facts_removes_every_planted_identifier() -> None:
    redacted = redact_facts(planted_facts(), ME)
    text = dumped(redacted)
    for secret in (
        "zqx-env",
        "/home/zqx/",
        "/home/ana",
        "gpubox",
        "8f2d3c4b",
        "hf_abc",
        "wJalr",
        "s3cr3t",
        "tk-1234",
    ):
        assert secret not in text, secret
    variables = redacted.environment.variables  # type: ignore[union-attr]
    assert variables["CUDA_VISIBLE_DEVICES"] == "GPU-…89ab"
    assert variables["HF_TOKEN"] == variables["AWS_SECRET_ACCESS_KEY"] == "<redacted>"
    assert variables["PYTHONPATH"] == "~/src:/home/<user3>/lib"  # another user, not "~user2/lib"
    assert redacted.tensorflow.distributions == {"tensorflow": "2.15.1"}  # type: ignore[union-attr]
    assert redacted.conda.packages[0].version == "8.9.2"  # type: ignore[union-attr]
    dist = redacted.python.distributions[0]  # type: ignore[union-attr]
    assert (dist.name, dist.version) == ("torch", "2.3.1")
    assert re.fullmatch(r"/home/<user\d>/\.venv/lib/python3\.11/site-packages", dist.location or "")
    assert redacted.driver.nvml_state == "ok"  # type: ignore[union-attr]
    assert redacted.target.python == "~/miniconda3/envs/<user>-env/bin/python"
    assert redact_facts(redacted, ME) == redacted  # idempotent


def test_uuid_and_serial_fields_keep_only_their_tail() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Board:
        uuid: str = ""
        serial: str = ""
        board_serial: str = ""

    board = Redactor(ME).facts(Board(uuid=UUID, serial="1324021034567", board_serial="ab"))
    assert board == Board(uuid="GPU-…89ab", serial="…4567", board_serial="ab")


def test_identity_of_this_machine_reads_user_home_sudo_user_and_host() -> None:
    identity = Identity.of_this_machine(
        {"USER": "root", "HOME": "/root", "SUDO_USER": "zqx", "HOSTNAME": "n1.x"}
    )
    assert "root" not in identity.users and identity.home == ""
    assert identity.users[:1] == ("zqx",)
    assert "n1.x" in identity.hosts and "n1" in identity.hosts
    mine = Identity.of_this_machine({"USER": "zqx", "HOME": "/home/zqx"})
    assert mine.home == "/home/zqx" and mine.users[0] == "zqx" and mine.homes[0] == "/home/zqx"


def _outcome(facts: Facts) -> list[tuple[str, str, str]]:
    report = diagnose(facts, load_matrix())
    findings = [(f.code, f.severity.value, "finding") for f in report.findings]
    return findings + [(o.code, o.state, "outcome") for o in report.outcomes]


@pytest.mark.parametrize("path", machine_files(), ids=lambda p: p.stem)
def test_replaying_a_redacted_facts_file_gives_the_same_findings(path: Path) -> None:
    facts, _ = load_machine(path)
    people = Identity(home="/home/me", users=("me", "ana"), homes=("/home/me", ""), hosts=("gpubox",))
    redacted = redact_facts(facts, people)
    replayed = from_data(Facts, json.loads(dumped(redacted)))
    assert _outcome(replayed) == _outcome(facts)
    text = dumped(replayed)
    assert "/home/me/" not in text and "/home/ana/" not in text


def test_planted_facts_replay_to_the_same_findings() -> None:
    facts = planted_facts()
    assert _outcome(from_data(Facts, json.loads(dumped(redact_facts(facts, ME))))) == _outcome(facts)


def test_saved_facts_are_redacted_by_default_and_kept_whole_on_request() -> None:
    from gpudoctor.render.json import dumps_facts

    redacted, whole = dumps_facts(planted_facts()), dumps_facts(planted_facts(), redact=False)
    for secret in ("8f2d3c4b", "hf_abc", "s3cr3t", "/home/zqx/", "/home/ana/"):
        assert secret not in redacted and secret in whole, secret
    assert from_data(Facts, json.loads(redacted)).tensorflow.distributions == {"tensorflow": "2.15.1"}  # type: ignore[union-attr]


def test_windows_homes_are_replaced_literally() -> None:
    windows = Identity(
        home="C:\\Users\\zqx", users=("zqx", "bob"), homes=("C:\\Users\\zqx", "C:\\Users\\bob")
    )
    text = "C:\\Users\\zqx\\venv;C:\\Users\\bob\\lib;C:\\Users\\carol\\x;C:\\Users\\zqxy"
    redactor = Redactor(windows)
    redactor.learn([text])
    assert redactor.text(text) == "~\\venv;C:\\Users\\<user2>\\lib;C:\\Users\\<user3>\\x;C:\\Users\\<user4>"
