"""`gpudoctor plan` output: text, Markdown and JSON, from `Plan` objects only.

Commands are printed whole, one to a line and never wrapped, so each line pastes as it is; text that
came from a facts file (GPU names, paths) is shown with control characters made visible.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from gpudoctor.plan import Plan, Requirement, Step

FORMATS = ("text", "json", "markdown")
PLAN_SCHEMA = 1
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_MARK = {True: "yes", False: "NO", None: "?"}
_STATUS = {"ready": "ready", "after-changes": "after changes", "none": "nothing fits"}


def clean(text: str) -> str:
    """One line of untrusted text, with control characters (terminal escapes) shown, not obeyed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def render(plans: Sequence[Plan], fmt: str, *, table: bool = False) -> str:
    if fmt == "json":
        return render_json(plans, table=table)
    if fmt == "markdown":
        return render_markdown(plans, table=table)
    return render_text(plans, table=table)


# ----------------------------------------------------------------------------------------------
# Text


def _machine_lines(plan: Plan) -> list[str]:
    machine = plan.machine
    lines = [f"Machine: {clean(machine.describe())}"]
    if machine.origins:
        origins = ", ".join(f"{k}: {clean(v)}" for k, v in sorted(machine.origins.items()))
        lines.append(f"  (from {origins})")
    return lines


def _requirement_line(r: Requirement) -> str:
    return f"  [{_MARK[r.ok]:>3}] {clean(r.text)} — this machine: {clean(r.have)}"


def _step_lines(steps: Sequence[Step], start: int = 1) -> list[str]:
    lines: list[str] = []
    for number, step in enumerate(steps, start):
        notes = [
            n for n, on in (("as administrator", step.needs_admin), ("then restart", step.needs_reboot)) if on
        ]
        shell = f" [{step.language}]" if step.commands else ""
        lines.append(
            f"  {number}. {clean(step.summary)}{shell}" + (f" ({', '.join(notes)})" if notes else "")
        )
        lines.extend(f"       {clean(command)}" for command in step.commands)
    return lines


def _plan_text(plan: Plan) -> list[str]:
    lines = [f"gpudoctor plan: {plan.name}" + (f" {plan.requested}" if plan.requested else ""), ""]
    lines += _machine_lines(plan)
    lines += ["", plan.headline + ".", ""]
    if plan.problems:
        lines.append("Why not:")
        lines += [f"  - {clean(p)}" for p in plan.problems]
        lines.append("")
    if plan.requirements:
        what = f"{plan.name} {plan.install.release}" if plan.install else plan.name
        lines.append(f"What {what} needs:")
        lines += [_requirement_line(r) for r in plan.requirements]
        lines.append("")
    if plan.changes:
        lines.append("Change this machine first:")
        lines += _step_lines(plan.changes)
        lines.append("")
    if plan.steps:
        heading = "Steps:" if plan.status != "none" else "Steps, once an NVIDIA GPU and driver are present:"
        lines.append(heading)
        lines += _step_lines(plan.steps, len(plan.changes) + 1)
        lines.append("")
    if plan.notes:
        lines.append("Notes:")
        lines += [f"  - {clean(n)}" for n in plan.notes]
        lines.append("")
    if plan.ways_out:
        lines.append("Ways out:" if plan.status == "none" else "To go further:")
        lines += _step_lines(plan.ways_out)
        lines.append("")
    if plan.install is not None and plan.status != "none":
        if plan.doctor:
            lines.append("gpudoctor check on the planned machine: no errors; warnings:")
            lines += [f"  - {clean(d)}" for d in plan.doctor]
        else:
            lines.append("gpudoctor check on the planned machine: no errors, no warnings.")
    return lines


def _row(plan: Plan) -> list[str]:
    install = plan.install
    if install is None or plan.status == "none":
        why = plan.problems[0] if plan.problems else "no release fits"
        return [plan.name, "-", "-", "-", _STATUS[plan.status], clean(why)]
    build = install.variant or (f"CUDA {install.cuda}" if install.cuda else install.device)
    needs = "; ".join(r.text for r in plan.requirements if r.need in ("driver", "platform"))
    if plan.status == "after-changes":
        needs = "change first: " + "; ".join(s.summary.split(":")[0] for s in plan.changes)
    return [plan.name, install.release, build, install.python, _STATUS[plan.status], clean(needs)]


_HEADER = ["framework", "release", "build", "Python", "status", "needs"]


def _table_text(plans: Sequence[Plan]) -> list[str]:
    rows = [_HEADER, *(_row(p) for p in plans)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER) - 1)]
    lines = []
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return lines


def render_text(plans: Sequence[Plan], *, table: bool = False) -> str:
    if not table:
        return "\n".join("\n".join(_plan_text(p)).rstrip() for p in plans) + "\n"
    lines = ["gpudoctor plan --all", ""]
    lines += _machine_lines(plans[0])
    lines += ["", *_table_text(plans), ""]
    for plan in plans:
        installs = [s for s in plan.steps if s.kind == "install"] if plan.status != "none" else []
        if installs:
            lines.append(f"{plan.name} {plan.install.release if plan.install else ''}:")
            lines.extend(f"  {clean(c)}" for s in installs for c in s.commands)
    lines += ["", "`gpudoctor plan tensorflow|torch|jax` gives every step, the checks and the notes."]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# Markdown


def _md(text: str) -> str:
    return clean(text).replace("|", "\\|")


def _fence(step: Step) -> list[str]:
    if not step.commands:
        return []
    return [f"```{'powershell' if step.language == 'powershell' else 'bash'}", *step.commands, "```"]


def _plan_markdown(plan: Plan) -> list[str]:
    lines = [f"## {plan.name}" + (f" {plan.requested}" if plan.requested else ""), ""]
    lines += [f"**{_md(plan.headline)}.**", "", f"Machine: {_md(plan.machine.describe())}", ""]
    if plan.problems:
        lines += ["Why not:", "", *(f"- {_md(p)}" for p in plan.problems), ""]
    if plan.requirements:
        lines += ["| need | this machine | ok |", "| --- | --- | --- |"]
        lines += [f"| {_md(r.text)} | {_md(r.have)} | {_MARK[r.ok]} |" for r in plan.requirements]
        lines.append("")
    for title, steps in (("Change this machine first", plan.changes), ("Steps", plan.steps)):
        if steps:
            lines += [f"### {title}", ""]
            for number, step in enumerate(steps, 1):
                lines += [f"{number}. {_md(step.summary)}", "", *_fence(step), ""]
    if plan.notes:
        lines += ["### Notes", "", *(f"- {_md(n)}" for n in plan.notes), ""]
    if plan.ways_out:
        lines += ["### Ways out" if plan.status == "none" else "### To go further", ""]
        for step in plan.ways_out:
            lines += [f"- {_md(step.summary)}", "", *_fence(step), ""]
    return lines


def render_markdown(plans: Sequence[Plan], *, table: bool = False) -> str:
    lines = ["# gpudoctor plan", ""]
    if table:
        lines += ["| " + " | ".join(_HEADER) + " |", "|" + " --- |" * len(_HEADER)]
        lines += ["| " + " | ".join(_md(c) for c in _row(p)) + " |" for p in plans]
        lines.append("")
    for plan in plans:
        lines += _plan_markdown(plan)
    return "\n".join(lines).rstrip() + "\n"


# ----------------------------------------------------------------------------------------------
# JSON


def _step_data(step: Step) -> dict[str, Any]:
    return {
        "summary": step.summary,
        "kind": step.kind,
        "shell": step.language,
        "commands": list(step.commands),
        "needs_admin": step.needs_admin,
        "needs_reboot": step.needs_reboot,
    }


def plan_data(plan: Plan) -> dict[str, Any]:
    install = plan.install
    machine = plan.machine
    return {
        "framework": plan.framework,
        "requested": plan.requested,
        "status": plan.status,
        "headline": plan.headline,
        "release": install.release if install else None,
        "install": None
        if install is None
        else {
            "release": install.release,
            "python": install.python,
            "environment": install.env_name,
            "variant": install.variant,
            "cuda": install.cuda,
            "cudnn": install.cudnn,
            "device": install.device,
            "pip": dict(install.pip),
            "conda": dict(install.conda),
        },
        "machine": {
            "os": machine.flavor,
            "arch": machine.arch,
            "windows_build": machine.platform.windows_build,
            "jetson": machine.jetson,
            "driver": machine.driver,
            "driver_cuda": machine.driver_cuda,
            "gpus": [{"name": n, "compute_capability": cc} for n, cc in machine.gpus],
            "python": machine.python,
            "manager": machine.manager,
            "from": dict(machine.origins),
        },
        "requirements": [
            {"need": r.need, "text": r.text, "this_machine": r.have, "ok": r.ok} for r in plan.requirements
        ],
        "changes": [_step_data(s) for s in plan.changes],
        "steps": [_step_data(s) for s in plan.steps],
        "problems": list(plan.problems),
        "ways_out": [_step_data(s) for s in plan.ways_out],
        "notes": list(plan.notes),
        "doctor_warnings": list(plan.doctor),
        "sources": list(plan.sources),
    }


def render_json(plans: Sequence[Plan], *, table: bool = False) -> str:
    from gpudoctor import __version__

    document: dict[str, Any] = {
        "schema_version": PLAN_SCHEMA,
        "gpudoctor_version": __version__,
        "plans": [plan_data(p) for p in plans],
    }
    if not table and len(plans) == 1:
        document = {**document, **document.pop("plans")[0]}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
