"""`gpudoctor fleet` output: plain text, Markdown and JSON of a `Fleet`. Renders only; never judges.

Every string in a `Fleet` was sanitised when it was read (no control characters, capped length);
Markdown escapes what its own syntax would misread.
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

from gpudoctor.fleet import FindingGroup, Fleet, Node, hostlist

FLEET_SCHEMA_VERSION = 1
MAX_VARIANTS_SHOWN = 3


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def headline(fleet: Fleet) -> str:
    errors = len(fleet.names("error"))
    warnings = len(fleet.names("warning"))
    parts = [f"{errors} with errors", f"{warnings} with warnings only", f"{len(fleet.healthy)} healthy"]
    if fleet.unreadable:
        parts.append(f"{len(fleet.unreadable)} unreadable")
    if fleet.missing:
        parts.append(f"{len(fleet.missing)} without a report")
    return f"{_plural(fleet.total, 'node')}: {', '.join(parts)}"


def _shown(fleet: Fleet, verbose: bool) -> list[FindingGroup]:
    return [g for g in fleet.groups if verbose or g.severity != "info"]


def _drivers(nodes: tuple[Node, ...]) -> dict[str, list[str]]:
    by_version: dict[str, list[str]] = {}
    for node in nodes:
        if node.driver_version:
            by_version.setdefault(node.driver_version, []).append(node.name)
    return by_version


# ---------------------------------------------------------------------------------------------
# Text


def render_text(fleet: Fleet, *, verbose: bool = False, width: int = 100) -> str:
    width = max(60, width)
    lines = [f"gpudoctor fleet: {headline(fleet)}", ""]
    indent = " " * 25

    def wrapped(text: str, prefix: str = indent) -> list[str]:
        return textwrap.wrap(
            text, width=width, initial_indent=prefix, subsequent_indent=indent + "  ", break_on_hyphens=False
        ) or [prefix]

    groups = _shown(fleet, verbose)
    if groups:
        lines.append(f"{'severity':<9} {'code':<7} {'nodes':>5}  finding, then the nodes")
        for g in groups:
            lines.extend(wrapped(g.title or "(no title)", f"{g.severity:<9} {g.code:<7} {g.count:>5}  "))
            lines.extend(wrapped(hostlist(g.nodes)))
            variants = g.variants if verbose else g.variants[:MAX_VARIANTS_SHOWN]
            for variant in variants:
                where = f" [{hostlist(variant.nodes)}]" if len(g.variants) > 1 else ""
                lines.extend(wrapped(f"- {variant.message or '(no message)'}{where}"))
            if len(variants) < len(g.variants):
                lines.append(f"{indent}- and {len(g.variants) - len(variants)} more wordings (-v shows them)")
        lines.append("")
    elif fleet.nodes:
        lines.extend(["No findings on any node that was read.", ""])
    drivers = _drivers(fleet.nodes)
    if len(drivers) > 1 or (verbose and drivers):
        lines.append("NVIDIA drivers:")
        for version, names in sorted(drivers.items(), key=lambda kv: -len(kv[1])):
            lines.extend(wrapped(f"{version}: {hostlist(names)} ({len(names)})", "  "))
        lines.append("")
    lines.append(f"Healthy: {_plural(len(fleet.healthy), 'node')}")
    if fleet.healthy:
        lines.extend(wrapped(hostlist(fleet.healthy), "  "))
    if fleet.unreadable:
        lines.append(f"Could not read: {_plural(len(fleet.unreadable), 'node')}")
        lines.extend(f"  {u.name}: {u.path}: {u.reason}" for u in fleet.unreadable)  # one line each, for grep
    if fleet.missing:
        lines.append(f"No report from: {_plural(len(fleet.missing), 'node')}")
        lines.extend(wrapped(hostlist(fleet.missing), "  "))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Markdown

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md(text: str) -> str:
    """Text that Markdown shows as written: its syntax characters escaped, no raw HTML."""
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def md_code(text: str) -> str:
    """An inline code span; a name with a backtick or a pipe cannot break out of it or the table."""
    return "`" + text.replace("`", "'").replace("|", "¦") + "`"


def render_markdown(fleet: Fleet, *, verbose: bool = False) -> str:
    out = ["## gpudoctor fleet", "", f"**{md(headline(fleet))}**", ""]
    groups = _shown(fleet, verbose)
    if groups:
        out += ["| severity | code | finding | nodes | which |", "| --- | --- | --- | ---: | --- |"]
        out += [
            f"| {g.severity} | {g.code} | {md(g.title)} | {g.count} | {md_code(hostlist(g.nodes))} |"
            for g in groups
        ]
        out.append("")
        for g in groups:
            out += [f"<details><summary>{md(g.code)}: {md(g.title)}</summary>", ""]
            for variant in g.variants:
                out.append(f"- {md(variant.message) or '(no message)'}: {md_code(hostlist(variant.nodes))}")
            out += ["", f"`gpudoctor explain {md(g.code)}`", "", "</details>", ""]
    drivers = _drivers(fleet.nodes)
    if len(drivers) > 1 or (verbose and drivers):
        out += ["### NVIDIA drivers", "", "| driver | nodes | which |", "| --- | ---: | --- |"]
        for version, names in sorted(drivers.items(), key=lambda kv: -len(kv[1])):
            out.append(f"| {md(version)} | {len(names)} | {md_code(hostlist(names))} |")
        out.append("")
    out += [f"### Healthy ({len(fleet.healthy)})", ""]
    out += [md_code(hostlist(fleet.healthy)) if fleet.healthy else "None.", ""]
    if fleet.unreadable:
        out += [
            f"### Could not read ({len(fleet.unreadable)})",
            "",
            "| node | file | why |",
            "| --- | --- | --- |",
        ]
        out += [f"| {md_code(u.name)} | {md_code(u.path)} | {md(u.reason)} |" for u in fleet.unreadable]
        out.append("")
    if fleet.missing:
        out += [f"### No report from ({len(fleet.missing)})", "", md_code(hostlist(fleet.missing)), ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# JSON


def fleet_data(fleet: Fleet) -> dict[str, Any]:
    from gpudoctor import __version__

    return {
        "schema_version": FLEET_SCHEMA_VERSION,
        "kind": "gpudoctor-fleet",
        "gpudoctor_version": __version__,
        "summary": {
            "nodes": fleet.total,
            "read": len(fleet.nodes),
            "with_errors": len(fleet.names("error")),
            "with_warnings_only": len(fleet.names("warning")),
            "healthy": len(fleet.healthy),
            "unreadable": len(fleet.unreadable),
            "missing": len(fleet.missing),
        },
        "findings": [
            {
                "code": g.code,
                "severity": g.severity,
                "title": g.title,
                "count": g.count,
                "nodes": list(g.nodes),
                "hostlist": hostlist(g.nodes),
                "variants": [{"message": v.message, "nodes": list(v.nodes)} for v in g.variants],
            }
            for g in fleet.groups
        ],
        "healthy": list(fleet.healthy),
        "unreadable": [{"node": u.name, "path": u.path, "reason": u.reason} for u in fleet.unreadable],
        "missing": list(fleet.missing),
        "nodes": [
            {
                "node": n.name,
                "path": n.path,
                "source": n.kind,
                "state": n.state,
                "errors": n.count("error"),
                "warnings": n.count("warning"),
                "codes": [f.code for f in n.findings],
                "usable_gpu": n.usable_gpu,
                "gpus": n.gpus,
                "driver_version": n.driver_version,
                "gpudoctor_version": n.gpudoctor_version,
                "schema_version": n.schema_version,
            }
            for n in fleet.nodes
        ],
    }


def render_json(fleet: Fleet) -> str:
    """Pretty at the top, one line per finding, node and unreadable file: readable, and written by
    json's C encoder (an indented dump of 10,000 nodes takes longer than reading them)."""
    encode = json.JSONEncoder(ensure_ascii=False).encode  # one encoder, not one per item
    members = []
    for key, value in fleet_data(fleet).items():
        name = encode(key)
        if isinstance(value, list) and value:
            items = ",\n    ".join(map(encode, value))
            members.append(f"  {name}: [\n    {items}\n  ]")
        else:
            members.append(f"  {name}: {encode(value)}")
    return "{\n" + ",\n".join(members) + "\n}\n"
