"""Keep what identifies the person or the machine out of what gpudoctor prints and saves.

Two levels:

- `redact(data)` / `redact_text(text, terminal=True)`: for the terminal. The running user's home
  becomes `~` (a path stays usable in a shell), and only at a path boundary: `/home/zqx` never
  turns `/home/zqxuser2/lib` into `~user2/lib`.
- `redact_facts(facts)` / `Redactor`: for everything saved or shared (facts, JSON, Markdown, JUnit).
  Besides the home folder: user names (`<user>`, `<user2>`, ...) in paths and text, other users'
  home folders, the host name (`<host>`), GPU and MIG UUIDs shortened so they can still be told
  apart (`GPU-…a1b2`), serial numbers, values of secret-looking variables (*TOKEN*, *SECRET*, *KEY*,
  *PASSWORD*, *CREDENTIAL*), credentials and tokens in URLs, and access tokens anywhere (also inside
  PATH / LD_LIBRARY_PATH entries). The replacement is consistent across the whole document, so rules
  find the same problems in a redacted facts file as in the original.

Structure-aware: package names, versions, build strings and other identifiers are only checked for
secrets, and `Literal` fields (states, kinds, locations) are left alone.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gpudoctor import lazy_re
from gpudoctor.facts import Facts

T = TypeVar("T")

REDACTED = "<redacted>"
HOST = "<host>"
# Words that are never treated as a person's or machine's name: replacing them would rewrite the facts.
NOT_A_NAME = frozenset(
    {
        "",
        "root",
        "admin",
        "user",
        "users",
        "home",
        "ubuntu",
        "debian",
        "fedora",
        "centos",
        "jovyan",
        "runner",
        "nobody",
        "localhost",
        "cuda",
        "nvidia",
        "conda",
        "python",
        "gpu",
        "lib",
        "bin",
        "opt",
        "usr",
        "local",
        "share",
        "public",
        "shared",
        "default",
        "all users",
        "test",
        "docker",
        "container",
    }
)
SECRET_NAME = lazy_re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|(^|_)KEY($|_)", re.IGNORECASE
)
_PATH_CHAR = r"A-Za-z0-9._\-"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
GPU_UUID = lazy_re.compile(rf"\b(GPU|MIG|MIG-GPU)-({_UUID})")
BARE_UUID = lazy_re.compile(rf"(?<![0-9A-Za-z-])({_UUID})(?![0-9A-Za-z-])")
SERIAL = lazy_re.compile(r"(?i)(serial(?:[ _-]?(?:number|no))?\s*[:=]\s*)([A-Za-z0-9-]{4,})")
URL_CREDENTIALS = lazy_re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s:@]+(?::[^/\s@]*)?)@")
URL_QUERY_SECRET = lazy_re.compile(
    r"(?i)([?&](?:token|access_token|api_key|apikey|key|secret|password|sig|signature|auth)=)[^&#\s\"']+"
)
CONDA_TOKEN = lazy_re.compile(r"(/t/)([A-Za-z0-9-]{8,})(/)")  # https://conda.anaconda.org/t/<token>/channel
KNOWN_TOKEN = lazy_re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}"
    r"|hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}"
    r"|AIza[0-9A-Za-z_-]{35}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})"
)
# A long run of letters and digits in mixed case (not a hex hash, not a version): an access token.
_LONG_RUN = lazy_re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9_-]{32,}(?![A-Za-z0-9])")
_FOUND_HOME = lazy_re.compile(
    r"(?<![A-Za-z0-9._\-/\\])(/home/|/Users/|/export/home/|[A-Za-z]:[\\/]Users[\\/])([A-Za-z0-9._-]+)"
)


@dataclass(frozen=True)
class Identity:
    """Who and what to hide on this machine."""

    home: str = ""  # the running user's home folder; "" where there is none to hide (/, /root)
    users: tuple[str, ...] = ()  # names that identify people: the running user, SUDO_USER
    homes: tuple[str, ...] = ()  # their home folders, same order as users; "" where unknown
    hosts: tuple[str, ...] = ()  # this machine's names, full and short

    @classmethod
    def of_this_machine(cls, env: Mapping[str, str] | None = None) -> Identity:
        env = os.environ if env is None else env
        home = _home(env)
        users: list[str] = []
        homes: list[str] = []
        for user, user_home in ((_login_name(env), home), (env.get("SUDO_USER", ""), "")):
            if user and user.lower() not in NOT_A_NAME and user not in users:
                users.append(user)
                user_home = user_home or _home_of(user)
                homes.append(user_home if _usable_home(user_home) else "")
        hosts: list[str] = []
        for name in (_hostname(), env.get("HOSTNAME", ""), env.get("COMPUTERNAME", "")):
            for candidate in (name, name.split(".")[0]):
                if candidate and candidate.lower() not in NOT_A_NAME and candidate not in hosts:
                    hosts.append(candidate)
        return cls(
            home=home if _usable_home(home) else "",
            users=tuple(users),
            homes=tuple(homes),
            hosts=tuple(hosts),
        )


def _login_name(env: Mapping[str, str]) -> str:
    for var in ("USER", "LOGNAME", "USERNAME"):
        if env.get(var):
            return env[var]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):
        return ""


def _home(env: Mapping[str, str]) -> str:
    try:
        return env.get("HOME") or str(Path.home())
    except (RuntimeError, KeyError):
        return ""


def _home_of(user: str) -> str:
    try:
        import pwd

        return pwd.getpwnam(user).pw_dir
    except (ImportError, KeyError, OSError):
        return ""


def _hostname() -> str:
    if hasattr(os, "uname"):  # what gethostname() returns there, without importing socket
        return os.uname().nodename
    import socket

    try:
        return socket.gethostname()
    except OSError:
        return ""


def _usable_home(home: str) -> bool:
    return home.rstrip("/\\") not in ("", "/root", "/", "C:") and len(home) > 1


def _bounded(text: str) -> str:
    """A pattern for `text` that matches only as a whole path or word, never inside a longer name."""
    return rf"(?<![{_PATH_CHAR}]){re.escape(text)}(?![{_PATH_CHAR}])"


def _path_prefix(home: str) -> re.Pattern[str]:
    """`home` at the start of a path: not preceded by a path character, not followed by a name character."""
    home = home.rstrip("/\\")
    return re.compile(rf"(?<![{_PATH_CHAR}/\\]){re.escape(home)}(?![{_PATH_CHAR}])")


def _replace(pattern: re.Pattern[str], replacement: str, text: str) -> str:
    """Literal replacement: a Windows path (C:\\Users\\<user2>) holds backslashes re.sub would read as escapes."""
    return pattern.sub(lambda _: replacement, text)


def _keep_tail(text: str) -> str:
    return "…" + text[-4:]


def redact_secrets(text: str) -> str:
    """Secrets only: credentials and tokens in URLs, known token shapes, long random-looking runs, UUIDs, serials."""
    text = URL_CREDENTIALS.sub(lambda m: m.group(1) + REDACTED + "@", text)
    text = URL_QUERY_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    text = CONDA_TOKEN.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    text = KNOWN_TOKEN.sub(REDACTED, text)
    text = GPU_UUID.sub(lambda m: f"{m.group(1)}-{_keep_tail(m.group(2))}", text)
    text = BARE_UUID.sub(lambda m: _keep_tail(m.group(1)), text)
    text = _LONG_RUN.sub(lambda m: REDACTED if _looks_random(m.group(0)) else m.group(0), text)
    return SERIAL.sub(lambda m: m.group(1) + _keep_tail(m.group(2)), text)


def _looks_random(run: str) -> bool:
    if re.fullmatch(r"[0-9a-fA-F_-]+", run):  # a commit or content hash: public, not a secret
        return False
    letters = sum(c.isalpha() for c in run)
    digits = sum(c.isdigit() for c in run)
    has_upper = any(c.isupper() for c in run)
    has_lower = any(c.islower() for c in run)
    words = re.split(r"[_-]", run)
    wordy = all(w.isalpha() or w.isdigit() or len(w) < 16 for w in words)  # a_long_descriptive_name
    return digits >= 3 and letters >= 8 and has_upper and has_lower and not wordy


class Redactor:
    """Consistent redaction of one document: the same name always gets the same placeholder."""

    def __init__(self, identity: Identity | None = None, *, terminal: bool = False) -> None:
        self.identity = Identity.of_this_machine() if identity is None else identity
        self.terminal = terminal
        self._users: dict[str, str] = {}  # name -> placeholder
        self._homes: list[tuple[re.Pattern[str], str]] = []
        self._names: list[tuple[re.Pattern[str], str]] = []
        if self.identity.home:
            self._homes.append((_path_prefix(self.identity.home), "~"))
        self._hosts = [
            (re.compile(_bounded(h)), HOST) for h in sorted(self.identity.hosts, key=len, reverse=True)
        ]
        for user, home in zip(self.identity.users, self.identity.homes, strict=False):
            self._add_user(user, home, anywhere=True)

    def _add_user(self, user: str, home: str, *, anywhere: bool) -> None:
        """`anywhere`: the name is replaced as a word in any text, else only as a path component."""
        if user in self._users:
            return
        placeholder = "<user>" if not self._users else f"<user{len(self._users) + 1}>"
        self._users[user] = placeholder
        home = home.rstrip("/\\")
        if home and home != self.identity.home.rstrip("/\\"):
            self._homes.append((_path_prefix(home), home[: len(home) - len(user)] + placeholder))
        if anywhere:
            pattern = rf"(?<![A-Za-z0-9]){re.escape(user)}(?![A-Za-z0-9])"
        else:
            pattern = rf"(?<=[/\\]){re.escape(user)}(?![{_PATH_CHAR}])"
        self._names.append((re.compile(pattern), placeholder))

    def learn(self, texts: typing.Iterable[str]) -> None:
        """Also hide the users whose home folders appear in these texts (`/home/<name>/...`)."""
        for text in texts:
            for match in _FOUND_HOME.finditer(text):
                name = match.group(2)
                if name.lower() not in NOT_A_NAME:
                    self._add_user(name, match.group(1) + name, anywhere=False)

    def text(self, text: str, *, identifier: bool = False) -> str:
        if not text:
            return text
        if self.terminal:
            for pattern, replacement in self._homes[:1] if self.identity.home else ():
                text = _replace(pattern, replacement, text)
            return text
        text = redact_secrets(text)
        if identifier:
            return text
        for pattern, replacement in self._homes:
            text = _replace(pattern, replacement, text)
        for pattern, replacement in self._names:
            text = _replace(pattern, replacement, text)
        for pattern, replacement in self._hosts:
            text = _replace(pattern, replacement, text)
        return text

    def data(self, data: Any) -> Any:
        """JSON-like data: every string value (keys kept; values of secret-looking keys replaced)."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, list | tuple):
            return [self.data(v) for v in data]
        if isinstance(data, dict):
            return {k: self._value(str(k), v) for k, v in data.items()}
        return data

    def _value(self, key: str, value: Any) -> Any:
        if isinstance(value, str) and not self.terminal and SECRET_NAME.search(key):
            return REDACTED if value else value
        return self.data(value)

    def facts(self, facts: T) -> T:
        if not self.terminal:
            self.learn(_strings(facts))
        return typing.cast(T, self._walk(facts, kind="text"))

    def _walk(self, value: Any, *, kind: str) -> Any:
        if isinstance(value, str):
            if kind == "tail" and not self.terminal:
                shortened = GPU_UUID.sub(lambda m: f"{m.group(1)}-{_keep_tail(m.group(2))}", value)
                return shortened if shortened != value or len(value) <= 4 else _keep_tail(value)
            return self.text(value, identifier=kind == "identifier")
        if isinstance(value, tuple):
            return tuple(self._walk(v, kind=kind) for v in value)
        if isinstance(value, dict):
            if kind != "text":  # package name -> version
                return {k: self._walk(v, kind=kind) for k, v in value.items()}
            return {k: self._value(str(k), v) for k, v in value.items()}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {}
            for name, field_kind in _field_kinds(type(value)).items():
                if field_kind == "literal":
                    continue
                old = getattr(value, name)
                new = self._walk(old, kind=field_kind)  # a nested dataclass's fields keep their own kinds
                if new != old:
                    changes[name] = new
            return dataclasses.replace(value, **changes) if changes else value
        return value


IDENTIFIER_FIELDS = frozenset(
    {"name", "version", "build", "channel", "requires", "distributions", "plugins", "kind", "names", "code"}
)


TAIL_FIELDS = ("uuid", "serial")  # and *_uuid, *_serial: keep the last four characters


@functools.cache
def _field_kinds(cls: type) -> dict[str, str]:
    """For each field: "literal" (leave alone), "identifier" (secrets only), "tail", or "text"."""
    hints = typing.get_type_hints(cls)
    kinds = {}
    for f in dataclasses.fields(cls):
        hint = hints.get(f.name)
        if _is_literal(hint):
            kinds[f.name] = "literal"
        elif f.name in TAIL_FIELDS or f.name.endswith(tuple("_" + t for t in TAIL_FIELDS)):
            kinds[f.name] = "tail"
        elif f.name in IDENTIFIER_FIELDS or f.name.endswith(("_version", "_versions", "_capabilities")):
            kinds[f.name] = "identifier"
        else:
            kinds[f.name] = "text"
    return kinds


def _is_literal(hint: Any) -> bool:
    if typing.get_origin(hint) is typing.Literal:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return bool(args) and all(typing.get_origin(a) is typing.Literal for a in args)
    return False


def _strings(value: Any) -> typing.Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _strings(getattr(value, f.name))


def redact_facts(facts: Facts, identity: Identity | None = None) -> Facts:
    """Facts fit to save or share: see the module docstring. Rules find the same problems in them."""
    return Redactor(identity).facts(facts)


def redact_text(text: str, identity: Identity | None = None, *, terminal: bool = False) -> str:
    return Redactor(identity, terminal=terminal).text(text)


def redact(data: Any, home: str | None = None) -> Any:
    """Terminal-level redaction of JSON-like data: the running user's home folder becomes `~`."""
    identity = _terminal_identity() if home is None else Identity(home=home if _usable_home(home) else "")
    return Redactor(identity, terminal=True).data(data)


@functools.cache
def _terminal_identity() -> Identity:
    home = _home(os.environ)
    return Identity(home=home if _usable_home(home) else "")
