"""The kernel-log probe against fake journalctl/dmesg programs that check their argv, and on this machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gpudoctor.facts import XidEvent
from gpudoctor.probes.base import ProbeUnavailable
from gpudoctor.probes.kernel_log import JOURNALCTL, collect, describe, parse_kernel_log
from tests.conftest import OUTPUTS, FakeCall, fake_program, make_ctx


def ctx_with(bin_dir: Path) -> object:
    return make_ctx(env={"PATH": str(bin_dir)}, system="Linux")


def test_journal_first_xid_and_fallen_off_the_bus(bin_dir: Path) -> None:
    journal = fake_program(
        bin_dir, "journalctl", FakeCall(argv=JOURNALCTL, stdout=OUTPUTS / "journalctl-k-xid79.txt")
    )
    dmesg = fake_program(bin_dir, "dmesg", FakeCall(argv=()))
    facts = collect(ctx_with(bin_dir))  # type: ignore[arg-type]
    assert journal.calls() == [JOURNALCTL] and dmesg.calls() == []
    assert facts.source == "journalctl"
    assert facts.xids == (
        XidEvent(
            code=79, pci="0000:b3:00", text="pid='<unknown>', name=<unknown>, GPU has fallen off the bus."
        ),
        XidEvent(
            code=13,
            pci="0000:3b:00",
            text="pid=48211, name=python3, Graphics SM Warp Exception on (GPC 0, TPC 1, SM 0): Out Of Range Address",
        ),
    )
    assert facts.lines[0].startswith("NVRM: loading NVIDIA UNIX Open Kernel Module for x86_64  570.158.01")
    assert describe(facts).summary == "8 NVRM line(s) this boot (from journalctl) · Xid 13, 79"


def test_fallen_off_the_bus_without_an_xid_line_counts_as_xid_79() -> None:
    text = (OUTPUTS / "journalctl-k-xid79.txt").read_text(encoding="utf-8")
    text = "\n".join(ln for ln in text.splitlines() if "Xid" not in ln)
    facts = parse_kernel_log(text)
    assert facts.xids == (
        XidEvent(code=79, pci="0000:b3:00", text="fallen off the bus and is not responding to commands"),
    )


def test_empty_journal_falls_back_to_dmesg_legacy_gpu(bin_dir: Path) -> None:
    fake_program(bin_dir, "journalctl", FakeCall(argv=JOURNALCTL, stdout=""))
    dmesg = fake_program(bin_dir, "dmesg", FakeCall(argv=(), stdout=OUTPUTS / "dmesg-legacy-470-gtx780.txt"))
    facts = collect(ctx_with(bin_dir))  # type: ignore[arg-type]
    assert dmesg.calls() == [()]
    assert facts.source == "dmesg"
    assert facts.legacy_gpus == (("GeForce GTX 780", "470"),)
    assert facts.ignoring_driver == "550.120"
    assert facts.xids == () and facts.module_rejected is None


def test_open_module_without_gsp_rm_init_api_mismatch_lockdown() -> None:
    gsp = parse_kernel_log((OUTPUTS / "journalctl-k-open-module-no-gsp.txt").read_text(encoding="utf-8"))
    assert gsp.open_module_unsupported == ("10de:1d01",)
    assert gsp.module_rejected is None  # "module verification failed" only taints the kernel
    other = parse_kernel_log((OUTPUTS / "dmesg-rminitadapter-api-mismatch.txt").read_text(encoding="utf-8"))
    assert other.rm_init_failed == ("0000:01:00.0",)
    assert other.api_mismatch == ("535.183.01", "535.104.05")
    assert other.module_rejected == (
        "Lockdown: modprobe: unsigned module loading is restricted; see man kernel_lockdown.7"
    )


def test_relevance_ignores_case_and_each_refusal_is_said_as_the_kernel_said_it() -> None:
    log = (
        "[    1.000000] usb 1-1: new high-speed USB device\n"
        "[    2.000000] NVSWITCH: probe of 0000:05:00.0 done\n"
        "[    3.000000] nvidia: module license 'NVIDIA' taints kernel.\n"
        "[    4.000000] LOCKDOWN: insmod: unsigned MODULE loading is restricted\n"
        "[    5.000000] Loading of unsigned module is rejected. Key was rejected by service\n"
        "[    6.000000] nvidia: Unknown symbol drm_gem_prime_fd_to_handle (err -2)"
    )
    facts = parse_kernel_log(log)
    assert facts.lines == (
        "NVSWITCH: probe of 0000:05:00.0 done",
        "nvidia: module license 'NVIDIA' taints kernel.",
        "LOCKDOWN: insmod: unsigned MODULE loading is restricted",
        "Loading of unsigned module is rejected. Key was rejected by service",
        "nvidia: Unknown symbol drm_gem_prime_fd_to_handle (err -2)",
    )
    assert facts.module_rejected == "Loading of unsigned module is rejected. Key was rejected by service"
    symbol = parse_kernel_log(log.replace("Key was rejected by service", "key accepted"))
    assert symbol.module_rejected == "nvidia: Unknown symbol drm_gem_prime_fd_to_handle (err -2)"


def test_unprivileged_user_gets_needs_root(bin_dir: Path) -> None:
    fake_program(bin_dir, "journalctl", FakeCall(argv=JOURNALCTL, stdout=""))
    fake_program(bin_dir, "dmesg", FakeCall(argv=(), stderr=OUTPUTS / "dmesg-not-permitted.txt", exit_code=1))
    with pytest.raises(ProbeUnavailable) as caught:
        collect(ctx_with(bin_dir))  # type: ignore[arg-type]
    assert str(caught.value) == (
        "needs root (journalctl: no entries readable; dmesg: read kernel buffer failed: Operation not permitted)"
    )


def test_a_hanging_dmesg_is_stopped(bin_dir: Path) -> None:
    fake_program(bin_dir, "dmesg", FakeCall(argv=(), sleep=30))
    with pytest.raises(ProbeUnavailable) as caught:
        collect(ctx_with(bin_dir))  # type: ignore[arg-type]
    assert "dmesg did not finish within 5 s" in str(caught.value)


def test_garbage_is_ignored() -> None:
    facts = parse_kernel_log(
        "NVRM: Xid (PCI:zz): x, junk\n\x00\x01NVRM:\nNVRM: The NVIDIA  GPU installed\n" * 50
    )
    assert facts.xids == () and facts.legacy_gpus == () and len(facts.lines) == 150


def test_not_linux() -> None:
    with pytest.raises(ProbeUnavailable):
        collect(make_ctx(system="Windows"))


def test_this_machine_answers_or_says_why() -> None:
    try:
        facts = collect(make_ctx(env={"PATH": os.environ.get("PATH", os.defpath)}, system="Linux"))
    except ProbeUnavailable as exc:
        assert str(exc).startswith(("needs root", "not readable", "neither journalctl")), exc
        return
    assert facts.source in ("journalctl", "dmesg")
    assert all("NVRM" not in ln or ln.startswith("NVRM") for ln in facts.lines)


def test_the_log_programs_run_without_the_users_library_path(bin_dir: Path) -> None:
    """dmesg and journalctl need none of the user's LD_LIBRARY_PATH; with hundreds of folders on it the
    loader searches each for every library they link, so they are run without it."""
    script = bin_dir / "dmesg"
    script.write_text(
        '#!/bin/sh\necho "[    1.0] NVRM: library path ${LD_LIBRARY_PATH-unset}"\n', encoding="utf-8"
    )
    script.chmod(0o755)
    env = {"PATH": str(bin_dir), "LD_LIBRARY_PATH": "/opt/many/lib:/opt/more/lib"}
    facts = collect(make_ctx(env=env, system="Linux"))
    assert facts.lines == ("NVRM: library path unset",)
    tool_env = make_ctx(env=env).tool_env
    assert "LD_LIBRARY_PATH" not in tool_env and tool_env["PATH"] == str(bin_dir)
