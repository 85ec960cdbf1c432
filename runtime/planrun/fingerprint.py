"""A step's fingerprint: one hash over everything that decides what the step does, computed just
before it would start (docs/fingerprints.md). Equal fingerprints let a recorded success stand in
for running the step again; the `parts` it is computed from say why two differ.

The parts hold no secret: a secret's value, a secret param's and an output holding a secret
enter as a hash keyed with the state dir's own random key (`fingerprint.key`, mode 0600), so
the recorded parts cannot be used to test guesses of a secret. Other values enter as is (params,
which run_started records anyway) or hashed (env values, outputs).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planrun.core.byvalue import ByValue
from planrun.core.interpolate import Reference, find
from planrun.core.ir import canonical_json

if TYPE_CHECKING:
    from planrun.core.ir_types import IRStep
    from planrun.launch import RunContext
    from planrun.statcache import StatCache

# Bump when what a step does for the same parts changes (how args are quoted for `shell: true`,
# which variables a step receives…): every recorded fingerprint then stops matching.
SEMANTICS_VERSION = 1
KEY_FILE = "fingerprint.key"
_KEY_BYTES = 32
_CONDITION_REFS = re.compile(
    r"\bparams\.([A-Za-z_][A-Za-z0-9_]*)"
    r"|\bsteps\.([A-Za-z_][A-Za-z0-9_.\-]*?)\.outputs\.([A-Za-z_][A-Za-z0-9_.\-]*)"
)
MAX_REASONS = 4


@dataclass(frozen=True, eq=False, repr=False)
class Fingerprint(ByValue):
    digest: str
    parts: dict[str, Any]


class Unresolvable(Exception):
    """A value the step reads is not there (an output never set): it cannot be reused, and
    starting it will fail with the launcher's own reason."""


class SecretKey:
    """The state dir's key for hashing secret values, read or created on first use."""

    def __init__(self, state_dir: str | Path, create: bool = True) -> None:
        self._path = Path(state_dir) / KEY_FILE
        self._key: bytes | None = None
        self._create = create  # a dry run records nothing: without a key nothing can match

    def hash(self, value: str) -> str:
        if self._key is None:
            if self._create or self._path.exists():
                self._key = _load_or_create_key(self._path)
            else:
                self._key = os.urandom(_KEY_BYTES)
        return "k:" + hashlib.blake2b(value.encode(), key=self._key, digest_size=16).hexdigest()


def _load_or_create_key(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return _read_key(path)
    key = os.urandom(_KEY_BYTES)
    try:
        os.write(fd, key)
    finally:
        os.close(fd)
    return key


def _read_key(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        data = os.read(fd, _KEY_BYTES + 1)
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or len(data) != _KEY_BYTES:
        raise OSError(f"{path} is not a {_KEY_BYTES}-byte key file of this user")
    return data


def content_hash(value: object) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()[:32]


def compute(
    step: IRStep,
    ctx: RunContext,
    upstream: Mapping[str, str],
    secret_key: SecretKey,
    secret_params: frozenset[str],
    stats: StatCache | None,
) -> Fingerprint:
    """The fingerprint of `step` now; `upstream`: the fingerprints of the steps decided so far."""
    texts = [step.command, *step.args, step.cwd, *step.env.values()]
    refs = [r for text in texts if "${{" in text for r in find(text) if isinstance(r, Reference)]
    params = {r.name for r in refs if r.kind == "param"}
    outputs = {(str(r.step), r.name) for r in refs if r.kind == "output"}
    condition = step.condition
    if condition is not None:
        for match in _CONDITION_REFS.finditer(condition["source"]):
            if match.group(1):
                params.add(match.group(1))
            else:
                outputs.add((match.group(2), match.group(3)))
    masker = ctx.masker
    hold = masker.holds_secret if masker is not None else None
    parts: dict[str, Any] = {
        "v": SEMANTICS_VERSION,
        # The templates as the IR has them (the IR is recorded anyway); the values they read
        # are parts of their own, so that a changed param is told apart from a changed command.
        "command": [step.command, *step.args],
        "shell": step.shell,
        "cwd": step.cwd,
        "env": dict(step.env),
        "trigger_rule": step.trigger_rule.value,
        "condition": None if condition is None else condition["source"],
    }
    env_refs = sorted({r.name for r in refs if r.kind == "env"} - set(step.secrets))
    if env_refs:
        parts["env_vars"] = {n: content_hash(ctx.environ.get(n, "")) for n in env_refs}
    if step.secrets:
        parts["secrets"] = {n: secret_key.hash(ctx.environ.get(n, "")) for n in step.secrets}
    if params:
        parts["params"] = {
            n: secret_key.hash(str(ctx.params.get(n))) if n in secret_params else ctx.params.get(n)
            for n in sorted(params)
        }
    if outputs:
        parts["outputs"] = {
            f"{s}.{n}": _output_hash(ctx.outputs.get(s, {}).get(n), hold, secret_key)
            for s, n in sorted(outputs)
        }
    # Upstream steps whose outputs it reads, and, unless it declares its input files (then
    # their content stands for what upstream steps wrote), every dependency.
    read_from = {s for s, _ in outputs}
    deps = read_from if step.sources else read_from | set(step.depends_on)
    parts["upstream"] = {d: upstream.get(d) for d in sorted(deps)}
    if step.sources:
        cwd = os.path.abspath(os.path.join(ctx.workdir, _resolved(step.cwd, ctx)))
        assert stats is not None
        parts["sources"] = {
            "patterns": list(step.sources),
            "files": stats.digests(cwd, step.sources),
        }
    if step.generates:
        parts["generates"] = list(step.generates)
    return Fingerprint(content_hash(parts), parts)


def _output_hash(
    value: str | None, hold: Callable[[str], bool] | None, secret_key: SecretKey
) -> str | None:
    if value is None:
        raise Unresolvable
    return secret_key.hash(value) if hold is not None and hold(value) else content_hash(value)


def _resolved(cwd: str, ctx: RunContext) -> str:
    if "${{" not in cwd:
        return cwd
    from planrun.core.interpolate import substitute
    from planrun.launch import format_param

    def resolve(ref: Reference) -> str:
        if ref.kind == "param":
            return format_param(ctx.params.get(ref.name))
        if ref.kind == "env":
            return ctx.environ.get(ref.name, "")
        value = ctx.outputs.get(str(ref.step), {}).get(ref.name)
        if value is None:
            raise Unresolvable
        return value

    return substitute(cwd, resolve)


def generated_missing(step: IRStep, cwd: str) -> list[str]:
    """The `generates` patterns that match nothing under `cwd` now."""
    from planrun.statcache import expand

    return [p for p in step.generates or () if not expand(cwd, [p])]


def step_cwd(step: IRStep, ctx: RunContext) -> str:
    return os.path.abspath(os.path.join(ctx.workdir, _resolved(step.cwd, ctx)))


def explain(old: Mapping[str, Any], new: Mapping[str, Any], reran: Callable[[str], bool]) -> str:
    """Why `new` differs from `old`, in a few words ("param threshold 10→34, input a.py
    changed"); `reran(step)` tells an upstream step that runs again in this run."""
    reasons: list[str] = []
    if old.get("v") != new.get("v"):
        reasons.append("planrun's fingerprint version changed")
    for key, words in (
        ("command", "command changed"),
        ("shell", "shell changed"),
        ("cwd", "cwd changed"),
        ("env", "env changed"),
        ("trigger_rule", "trigger rule changed"),
        ("condition", "condition changed"),
        ("generates", "generates changed"),
    ):
        if old.get(key) != new.get(key):
            reasons.append(words)
    reasons += _diff(old, new, "params", lambda n, a, b: f"param {n} {_shown(a)}→{_shown(b)}")
    reasons += _diff(old, new, "env_vars", lambda n, a, b: f"env {n} changed")
    reasons += _diff(old, new, "secrets", lambda n, a, b: f"secret {n} changed")
    reasons += _diff(
        old, new, "outputs", lambda n, a, b: "output {1} of {0} changed".format(*n.rsplit(".", 1))
    )
    for dep in new.get("upstream", {}):
        if old.get("upstream", {}).get(dep) != new["upstream"][dep]:
            reasons.append(f"upstream {dep} {'re-ran' if reran(dep) else 'changed'}")
    old_src, new_src = old.get("sources") or {}, new.get("sources") or {}
    if old_src.get("patterns") != new_src.get("patterns"):
        reasons.append("sources changed")
    else:
        reasons += _diff(
            {"f": old_src.get("files", {})}, {"f": new_src.get("files", {})}, "f",
            lambda n, a, b: f"input {n} {_change(a, b)}",
        )  # fmt: skip
    if not reasons:
        return "fingerprint changed"
    more = len(reasons) - MAX_REASONS
    return ", ".join(reasons[:MAX_REASONS]) + (f" and {more} more" if more > 0 else "")


def _diff(
    old: Mapping[str, Any], new: Mapping[str, Any], key: str, say: Callable[[str, Any, Any], str]
) -> list[str]:
    a, b = old.get(key) or {}, new.get(key) or {}
    return [say(n, a.get(n), b.get(n)) for n in sorted(set(a) | set(b)) if a.get(n) != b.get(n)]


def _change(old: object, new: object) -> str:
    return "added" if old is None else "removed" if new is None else "changed"


def _shown(value: Any) -> str:
    if isinstance(value, str) and value.startswith("k:"):
        return "***"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "(unset)" if value is None else str(value)
