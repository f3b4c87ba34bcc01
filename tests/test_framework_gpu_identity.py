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
