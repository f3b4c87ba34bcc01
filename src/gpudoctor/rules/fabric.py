"""GD14x: NVSwitch systems, where NVIDIA Fabric Manager must run, at exactly the driver's version."""

from __future__ import annotations

from collections.abc import Iterator

from gpudoctor.facts import FabricFacts
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.rules import causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import distro_family

UNIT = "nvidia-fabricmanager"
WHY_802 = (
    "On an NVSwitch system (HGX/DGX) the GPUs stay unusable until Fabric Manager has set up the NVLink fabric: "
    "every CUDA program gets error 802, 'system not yet initialized' (PyTorch: 'Error 802: system not yet "
    "initialized'), although nvidia-smi lists the GPUs."
)


def _fabric(ctx: RuleContext) -> FabricFacts:
    facts = ctx.facts.fabric
    assert facts is not None  # needs=("fabric",)
    return facts


def _driver_version(ctx: RuleContext) -> str | None:
    d = ctx.facts.driver
    return d.driver_version or d.kernel_module_version if d is not None else None


def _install_fix(ctx: RuleContext, version: str | None) -> Fix:
    branch = (version or "").split(".")[0]
    family = distro_family(ctx.facts.platform)
    exact = version or "<driver version>"
    if family in ("ubuntu", "debian") and branch.isdigit():
        return ctx.fix(
            f"Install Fabric Manager of exactly the driver's version ({exact}), keep apt from upgrading one without "
            "the other, and start it",
            f"apt-cache madison nvidia-fabricmanager-{branch}",
            f"sudo apt install nvidia-fabricmanager-{branch}={exact}-1",
            f"sudo apt-mark hold nvidia-fabricmanager-{branch}",
            f"sudo systemctl enable --now {UNIT}",
            needs_admin=True,
        )
    if family == "rhel" and branch.isdigit():
        return ctx.fix(
            f"Install Fabric Manager of exactly the driver's version ({exact}) and start it",
            f"sudo dnf install nvidia-fabric-manager-{exact}-1",
            f"sudo systemctl enable --now {UNIT}",
            needs_admin=True,
        )
    return ctx.fix(
        f"Install NVIDIA Fabric Manager {exact} from the same repository as the driver, then start it",
        f"sudo systemctl enable --now {UNIT}",
        needs_admin=True,
    )


@rule(
    "GD142",
    "Fabric Manager is the same version as the driver",
    requires=causes.DRIVER,
    needs=("fabric",),
    blocks_gpu=True,
    problem="Fabric Manager's version differs from the driver's",
    part="fabric",
)
def fabric_manager_version(ctx: RuleContext) -> Iterator[Verdict]:
    f = _fabric(ctx)
    driver = _driver_version(ctx)
    if not f.has_nvswitch or f.version is None or driver is None or f.version == driver:
        return
    yield Verdict(
        severity=Severity.ERROR,
        message=f"Fabric Manager {f.version} does not match the NVIDIA driver {driver}: it refuses to start",
        why=WHY_802 + " Fabric Manager runs only with a driver of exactly its own version.",
        seen=(
            f"nv-fabricmanager --version: {f.version}",
            f"driver: {driver}",
            f"{UNIT}: {f.unit_active_state or 'state unknown'}",
            *f.log_errors[-3:],
        ),
        fixes=(_install_fix(ctx, driver),),
    )


@rule(
    "GD141",
    "Fabric Manager runs on this NVSwitch system",
    requires=(*causes.DRIVER, "GD142"),
    needs=("fabric",),
    blocks_gpu=True,
    problem="Fabric Manager is not running on this NVSwitch system",
    part="fabric",
)
def fabric_manager_running(ctx: RuleContext) -> Iterator[Verdict]:
    f = _fabric(ctx)
    if not f.has_nvswitch or f.unit_active_state == "active":
        return
    if f.binary is not None and not f.systemd:
        return  # no systemd: it may run under another supervisor, and nothing here can tell
    switches = len(f.nvswitch_nodes) or len(f.nvswitch_pci)
    seen = [f"NVSwitches: {switches} ({', '.join(f.nvswitch_nodes or f.nvswitch_pci)})"]
    driver = _driver_version(ctx)
    if f.binary is None:
        seen.append("nv-fabricmanager: not installed")
        yield Verdict(
            severity=Severity.ERROR,
            message=f"This NVSwitch system ({switches} NVSwitches) has no Fabric Manager installed: CUDA cannot "
            "use its GPUs",
            why=WHY_802,
            seen=tuple(seen),
            fixes=(_install_fix(ctx, driver),),
        )
        return
    state = f.unit_active_state or "unknown"
    seen.append(f"{UNIT}: {state}" + (f" ({f.unit_sub_state})" if f.unit_sub_state else ""))
    seen.append(f"enabled at boot: {f.unit_file_state or 'unknown'}")
    seen += list(f.log_errors[-3:])
    yield Verdict(
        severity=Severity.ERROR,
        message=f"Fabric Manager is installed but not running ({state}): CUDA cannot use the GPUs of this "
        "NVSwitch system",
        why=WHY_802,
        seen=tuple(seen),
        fixes=(
            ctx.fix(
                "Read why it stopped, then start it and enable it at boot",
                f"sudo journalctl -u {UNIT} -n 50 --no-pager",
                "sudo tail -n 50 /var/log/fabricmanager.log",
                f"sudo systemctl enable --now {UNIT}",
                needs_admin=True,
            ),
        ),
    )
