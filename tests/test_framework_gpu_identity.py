"""Which GPU each framework really got, and the whole reason it gives (issue #10.8, #10.9).

The real child scripts run in throwaway venvs holding stand-in packages: JAX attaching its plugin's
exception to the log record, torch reporting device UUIDs and PCI addresses.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gpudoctor.probes.jax import collect as collect_jax
from gpudoctor.probes.torch import _devices
from gpudoctor.rules.views import cuda_error_in
from tests.conftest import load_child, make_ctx
from tests.test_probe_jax import OUTDATED_CUDNN, jax_env

# jax/_src/xla_bridge.py, discover_pjrt_plugins(): the reason is the exception on the record.
XLA_BRIDGE_PLUGIN_ERROR = """
import logging
from jax import _S
logger = logging.getLogger(__name__)
_backend_errors = {}
def backends():
    try:
        raise RuntimeError(_S["plugin_exception"])
    except RuntimeError:
        logger.warning(
            "Jax plugin configuration error: Exception when calling %s.initialize()",
            "jax_plugins.xla_cuda12",
            exc_info=True,
        )
"""


def test_jax_keeps_the_exception_its_log_record_carries(tmp_path: Path) -> None:
    scenario: dict[str, Any] = {"jax": "0.4.31", "jaxlib": "0.4.31", "plugin_exception": OUTDATED_CUDNN}
    python = jax_env(tmp_path, scenario, {"jax-cuda12-plugin": "0.4.31", "jax-cuda12-pjrt": "0.4.31"})
    site = Path(python).parent.parent / "lib"
    (bridge,) = site.glob("python*/site-packages/jax/_src/xla_bridge.py")
    bridge.write_text(XLA_BRIDGE_PLUGIN_ERROR, encoding="utf-8")
    facts = collect_jax(make_ctx(python=python, cwd=tmp_path))
    (warning,) = [w for w in facts.warnings if "plugin configuration error" in w]
    assert warning.startswith(
        "Jax plugin configuration error: Exception when calling jax_plugins.xla_cuda12.initialize(): "
        "RuntimeError: Unable to use CUDA because of the following issues with CUDA components:"
    )
    assert "Installed version: 8907" in warning
    (check,) = facts.library_checks
    assert (check.name, check.installed, check.minimum) == ("cuDNN", "8.9.7", "9.1.0")


def test_torch_child_reports_uuid_and_pci_address() -> None:
    child = load_child("torch")
    props = SimpleNamespace(
        uuid="5e1c3b2a-7d1f-4c3e-9a41-2b6f0e8d9c17", pci_domain_id=0, pci_bus_id=0x3B, pci_device_id=0
    )
    torch = SimpleNamespace(cuda=SimpleNamespace(get_device_properties=lambda index: props))
    assert child.device_identity(torch, 0) == {
        "uuid": "GPU-5e1c3b2a-7d1f-4c3e-9a41-2b6f0e8d9c17",
        "pci_bus_id": "0000:3b:00.0",
    }
    old = SimpleNamespace(cuda=SimpleNamespace(get_device_properties=lambda index: SimpleNamespace()))
    assert child.device_identity(old, 0) == {}  # torch 1.x properties have neither
    broken = SimpleNamespace(cuda=SimpleNamespace(get_device_properties=lambda index: 1 / 0))
    assert child.device_identity(broken, 0) == {}


def test_torch_probe_keeps_only_well_formed_identities() -> None:
    raw = json.loads(
        '[{"index": 0, "name": "A", "capability": "8.0", "uuid": "GPU-5e1c3b2a-7d1f", "pci_bus_id": "0000:3b:00.0"},'
        ' {"index": 1, "name": "B", "uuid": "not-a-uuid\\u001b[2J", "pci_bus_id": 7}]'
    )
    first, second = _devices(raw)
    assert (first.uuid, first.pci_bus_id) == ("GPU-5e1c3b2a-7d1f", "0000:3b:00.0")
    assert (second.uuid, second.pci_bus_id) == (None, None)


def test_cuda_errors_in_each_frameworks_words() -> None:
    torch_802 = (
        "CUDA initialization: Unexpected error from cudaGetDeviceCount(). Did you run some cuda functions before "
        "calling NumCudaDevices() that might have already set an error? Error 802: system not yet initialized"
    )
    found = cuda_error_in(torch_802)
    assert found is not None and found.name == "CUDA_ERROR_SYSTEM_NOT_READY"
    tf = cuda_error_in("failed call to cuInit: UNKNOWN ERROR (303)")
    assert tf is not None and tf.code == 303
    jax = cuda_error_in(
        "Unable to initialize backend 'cuda': INTERNAL: cuInit(0) failed: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"
    )
    assert jax is not None and jax.code == 803
    unknown = cuda_error_in(
        "CUDA initialization: CUDA unknown error - this may be due to an incorrectly set up environment"
    )
    assert unknown is not None and unknown.code == 999
    assert cuda_error_in("Error 12345: nothing") is None and cuda_error_in("") is None


def test_visible_device_uuids_are_matched_as_cuda_matches_them() -> None:
    from gpudoctor.facts import DriverFacts, GpuFacts, MigDevice
    from gpudoctor.rules.gpus import _matches, _uuid_entries

    d = DriverFacts(
        nvml_state="ok",
        gpus=(
            GpuFacts(index=0, uuid="GPU-1b2c3d4e-0000-1111-2222-333344445551"),
            GpuFacts(
                index=1,
                uuid="GPU-1b2c9999-0000-1111-2222-333344445552",
                mig_current=True,
                mig_devices=(MigDevice(uuid="MIG-8f2d6c41-3b7a-5e90-a1c4-7d3e2f1b0a96"),),
            ),
        ),
    )
    assert _uuid_entries("GPU-1b2c3d4e, 0,GPU-x") == ["GPU-1b2c3d4e"]  # CUDA reads no further than the index
    assert _uuid_entries("0,1") == [] and _uuid_entries(None) == [] and _uuid_entries("") == []
    assert _matches("GPU-1b2c3d4e", d) == d.gpus[0]  # a unique prefix
    assert _matches("gpu-1B2C9999-0000-1111-2222-333344445552", d) == d.gpus[1]
    assert _matches("GPU-1b2c", d) is None  # fits both GPUs: CUDA refuses it
    assert _matches("MIG-8f2d6c41", d) == d.gpus[1]
    assert _matches("MIG-GPU-1b2c9999-0000-1111-2222-333344445552/1/0", d) == d.gpus[1]  # R450/R460 form
    assert (
        _matches("MIG-GPU-1b2c3d4e-0000-1111-2222-333344445551/1/0", d) is None
    )  # that GPU is not in MIG mode
    assert _matches("MIG-00000000", d) is None and _matches("GPU-", d) is None


def test_redacted_uuids_are_matched_only_whole() -> None:
    """A shared facts file keeps a UUID's last four characters: a full UUID still matches, a prefix cannot."""
    from gpudoctor.facts import DriverFacts, GpuFacts
    from gpudoctor.rules.gpus import _decidable, _matches

    d = DriverFacts(
        nvml_state="ok", gpus=(GpuFacts(index=0, uuid="GPU-…5551"), GpuFacts(index=1, uuid="GPU-…5552"))
    )
    assert _decidable("GPU-…5552", d) and _matches("GPU-…5552", d) == d.gpus[1]
    assert not _decidable("GPU-9f8e7d6c", d)


# TensorFlow's gpu_device.cc "Created device" lines, as real TensorFlow printed them (quoted from users' logs).
TF_CREATED_2_X = (
    "2026-01-23 15:04:30.793659: I tensorflow/core/common_runtime/gpu/gpu_device.cc:2021] Created device "
    "/job:localhost/replica:0/task:0/device:GPU:0 with 22233 MB memory:  -> device: 0, name: NVIDIA RTX A5000, "
    "pci bus id: 0000:84:00.0, compute capability: 8.6"
)
TF_CREATED_2_X_SECOND = (
    "2023-01-17 17:27:05.207349: I tensorflow/core/common_runtime/gpu/gpu_device.cc:1613] Created device "
    "/job:localhost/replica:0/task:0/device:GPU:1 with 9637 MB memory:  -> device: 1, name: NVIDIA GeForce RTX "
    "2080 Ti, pci bus id: 0000:42:00.0, compute capability: 7.5"
)
TF_CREATED_ABSL = (
    "I0000 00:00:1746176023.107064  322561 gpu_device.cc:2019] Created device "
    "/job:localhost/replica:0/task:0/device:GPU:0 with 22807 MB memory:  -> device: 0, name: Quadro RTX 6000, "
    "pci bus id: 0000:01:00.0, compute capability: 7.5"
)
TF_CREATED_1_X = (
    "2018-08-10 15:20:11.489101: I tensorflow/core/common_runtime/gpu/gpu_device.cc:1041] Created TensorFlow "
    "device (/job:localhost/replica:0/task:0/device:GPU:0 with 7543 MB memory) -> physical GPU (device: 0, name: "
    "GeForce GTX 1080, pci bus id: 0000:02:00.0, compute capability: 6.1)"
)
TF_CREATED_ROCM = (
    "2025-10-12 14:59:18.466081: I tensorflow/core/common_runtime/gpu/gpu_device.cc:1886] Created device "
    "/device:GPU:1 with 94875 MB memory:  -> device: 1, name: AMD Instinct MI300A, pci bus id: 0001:01:00.0"
)
TF_CREATED_METAL = (
    "2022-03-13 06:28:47.898755: I tensorflow/core/common_runtime/pluggable_device/pluggable_device_factory.cc:271] "
    "Created TensorFlow device (/job:localhost/replica:0/task:0/device:GPU:0 with 0 MB memory) -> physical "
    "PluggableDevice (device: 0, name: METAL, pci bus id: <undefined>)"
)


def test_tensorflow_device_lines_become_typed_devices() -> None:
    from gpudoctor.facts import FrameworkGpu
    from gpudoctor.probes.tensorflow import created_devices, parse_log

    assert created_devices([TF_CREATED_2_X_SECOND, TF_CREATED_2_X, TF_CREATED_2_X]) == (
        FrameworkGpu(
            index=0,
            cuda_ordinal=0,
            name="NVIDIA RTX A5000",
            pci_bus_id="0000:84:00.0",
            compute_capability="8.6",
            memory_mib=22233,
        ),
        FrameworkGpu(
            index=1,
            cuda_ordinal=1,
            name="NVIDIA GeForce RTX 2080 Ti",
            pci_bus_id="0000:42:00.0",
            compute_capability="7.5",
            memory_mib=9637,
        ),
    )
    (absl,) = created_devices([TF_CREATED_ABSL])
    assert (absl.name, absl.pci_bus_id, absl.compute_capability) == ("Quadro RTX 6000", "0000:01:00.0", "7.5")
    (old,) = created_devices([TF_CREATED_1_X])
    assert (old.index, old.cuda_ordinal, old.name, old.pci_bus_id, old.compute_capability) == (
        0,
        0,
        "GeForce GTX 1080",
        "0000:02:00.0",
        "6.1",
    )
    (rocm,) = created_devices([TF_CREATED_ROCM])
    assert (rocm.index, rocm.pci_bus_id, rocm.compute_capability) == (1, "0001:01:00.0", None)
    (metal,) = created_devices([TF_CREATED_METAL])
    assert (metal.name, metal.pci_bus_id, metal.memory_mib) == ("METAL", None, 0)
    assert parse_log([TF_CREATED_2_X]).devices == created_devices([TF_CREATED_2_X])
    # Bad input: a cut line, garbage, a line about something else.
    assert (
        created_devices(["Created device /job:localhost/replica:0/task:0/device:GPU:0 with", "\x1b[2J", ""])
        == ()
    )
    assert (
        created_devices(
            ["Created device /device:CPU:0 with 100 MB memory:  -> device: 0, name: x, pci bus id: y"]
        )
        == ()
    )


STANDIN_TF_DEVICES = f"""
import os as _os, sys as _sys
__version__ = "2.15.1"
_LINES = {[TF_CREATED_2_X, TF_CREATED_2_X_SECOND]!r}
_grown = []
_created = []

class _Device:
    def __init__(self, name):
        self.name = name

class sysconfig:
    @staticmethod
    def get_build_info():
        return {{"is_cuda_build": True, "cuda_version": "12.2", "cudnn_version": "8"}}

class config:
    @staticmethod
    def list_physical_devices(kind=None):
        return [_Device("/physical_device:GPU:%d" % i) for i in range(2)]

    @staticmethod
    def list_logical_devices(kind=None):
        # Real TensorFlow logs one line per GPU device as it creates them, at the first context use.
        if _os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH") != "true" or len(_grown) != 2:
            raise RuntimeError("would reserve most of each GPU's memory")
        if not _created:
            for line in _LINES:
                _sys.stderr.write(line + "\\n")
            _created.append(True)
        return [_Device("/device:GPU:%d" % i) for i in range(2)]

    class experimental:
        @staticmethod
        def set_memory_growth(device, enable):
            assert enable is True and device.name.startswith("/physical_device:GPU:")
            _grown.append(device.name)
"""


def test_tensorflow_child_creates_devices_with_memory_growth(tmp_path: Path) -> None:
    from tests.test_probe_tensorflow import collect as collect_tf
    from tests.test_probe_tensorflow import tf_venv

    facts = collect_tf(tf_venv(tmp_path, STANDIN_TF_DEVICES, version="2.15.1"), tmp_path)
    assert facts.imported and facts.gpus == ("/physical_device:GPU:0", "/physical_device:GPU:1")
    assert facts.list_devices_error is None
    assert [(d.index, d.name, d.pci_bus_id) for d in facts.gpu_devices] == [
        (0, "NVIDIA RTX A5000", "0000:84:00.0"),
        (1, "NVIDIA GeForce RTX 2080 Ti", "0000:42:00.0"),
    ]
    from gpudoctor.probes.tensorflow import describe as describe_tf

    assert "GPU: /physical_device:GPU:0 = NVIDIA RTX A5000, PCI 0000:84:00.0, compute capability 8.6" in (
        describe_tf(facts).details
    )


def test_tensorflow_child_that_dies_creating_devices_stays_imported(tmp_path: Path) -> None:
    from tests.test_probe_tensorflow import collect as collect_tf
    from tests.test_probe_tensorflow import tf_venv

    source = STANDIN_TF_DEVICES.replace(
        "        if not _created:", "        _os.kill(_os.getpid(), 9)\n        if not _created:"
    )
    facts = collect_tf(tf_venv(tmp_path, source, version="2.15.1"), tmp_path)
    assert facts.imported and facts.import_error is None
    assert len(facts.gpus) == 2 and facts.gpu_devices == ()
    assert facts.list_devices_error is not None
    assert facts.list_devices_error.endswith("while TensorFlow created its GPU devices")


def test_jax_child_reports_each_gpu_device_kind(tmp_path: Path) -> None:
    from tests.test_probe_jax import STANDIN_JAX

    scenario: dict[str, Any] = {
        "jax": "0.4.31",
        "jaxlib": "0.4.31",
        "devices": ["cuda:0", "cuda:1"],
        "default_backend": "gpu",
    }
    python = jax_env(tmp_path, scenario, {"jax-cuda12-plugin": "0.4.31", "jax-cuda12-pjrt": "0.4.31"})
    site = Path(python).parent.parent / "lib"
    (init,) = site.glob("python*/site-packages/jax/__init__.py")
    # jaxlib's device objects: device_kind (CUDA's name), local_hardware_id (the CUDA device number) and
    # the compute_capability attribute of PJRT's GPU device description; nothing else identifies the GPU.
    init.write_text(
        STANDIN_JAX.replace(
            "        self.id = int(number)",
            "        self.id = int(number)\n"
            "        self.device_kind = ['NVIDIA RTX A5000', 'NVIDIA GeForce RTX 2080 Ti'][self.id]\n"
            "        self.local_hardware_id = self.id\n"
            "        self.compute_capability = ['8.6', '7.5'][self.id]",
        ),
        encoding="utf-8",
    )
    facts = collect_jax(make_ctx(python=python, cwd=tmp_path))
    assert facts.devices == ("cuda:0", "cuda:1")
    assert [
        (d.index, d.cuda_ordinal, d.name, d.compute_capability, d.pci_bus_id) for d in facts.gpu_devices
    ] == [
        (0, 0, "NVIDIA RTX A5000", "8.6", None),
        (1, 1, "NVIDIA GeForce RTX 2080 Ti", "7.5", None),
    ]


def test_jax_gpu_identities_are_kept_only_when_well_formed() -> None:
    from gpudoctor.probes.jax import gpu_devices

    first, second = gpu_devices(
        [
            {"index": 0, "name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "cuda_ordinal": 0},
            {"index": 1, "name": "bad\x1b[2J", "compute_capability": 9, "cuda_ordinal": -1},
            {"index": "2"},
            "cuda:3",
        ]
    )
    assert (first.name, first.compute_capability, first.cuda_ordinal) == ("NVIDIA H100 80GB HBM3", "9.0", 0)
    assert (second.name, second.compute_capability, second.cuda_ordinal) == ("", None, None)
    assert gpu_devices(None) == () and gpu_devices("x") == ()
