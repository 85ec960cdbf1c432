"""Steps whose outcome is fixed by their command, known before they run: `true`, `false`,
`exit N`, `sh -c 'echo … >&2; exit 1'`. `planc simulate` uses it instead of assuming success.

Only what cannot turn out otherwise is recognised: the builtins `true`/`false`/`:` and a shell
script that is a sequence of `echo`/`printf`/`true`/`:` commands ending in `exit N` with a
literal N. Anything else (a variable, a pipe, `&&`, a substitution, any other command) is
unknown, and the simulation assumes it succeeds, as it says.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from planrun.core.ir_types import IRStep

_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "/bin/sh", "/bin/bash", "/usr/bin/bash"})
_TRUE = frozenset({"true", "/bin/true", "/usr/bin/true", ":"})
_FALSE = frozenset({"false", "/bin/false", "/usr/bin/false"})
_HARMLESS = frozenset({"echo", "printf", "true", ":"})
# Anything that could make the script's result depend on something else.
_UNSAFE = ("$", "`", "&&", "||", "|", "&", "(", ")", "<", "{", "}", "*", "?", "[", "\\")


def fixed_exit_code(step: IRStep | Mapping[str, Any]) -> int | None:
    """The exit code every attempt of the IR step has, when its command fixes it; else None.
    The step may also be given as its JSON's `command`, `args` and `shell`."""
    if isinstance(step, IRStep):
        command, args, shell = step.command, [str(a) for a in step.args], step.shell
    else:
        command, args, shell = str(step["command"]), [str(a) for a in step["args"]], step["shell"]
    if shell:
        return _script_exit(" ".join([command, *(shlex.quote(a) for a in args)]))
    if not args and command in _TRUE:
        return 0
    if not args and command in _FALSE:
        return 1
    if command in _SHELLS and len(args) >= 2 and args[0] == "-c":
        return _script_exit(args[1])
    return None


def _script_exit(script: str) -> int | None:
    """`echo x >&2; exit 3` → 3; None unless every command is harmless and the last one exits."""
    if any(token in script.replace(">&2", "").replace("2>&1", "") for token in _UNSAFE):
        return None
    words: list[list[str]] = []
    try:
        for line in script.splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=";")
            lexer.whitespace_split = True
            lexer.commenters = "#"
            current: list[str] = []
            for token in lexer:
                if token == ";":  # a quoted `;` comes back as part of a word, not alone
                    words.append(current)
                    current = []
                else:
                    current.append(token)
            words.append(current)
    except ValueError:  # unbalanced quotes: the shell would fail in its own way
        return None
    words = [w for w in words if w]
    if not words:
        return None
    *before, last = words
    if any(not w or w[0] not in _HARMLESS for w in before):
        return None
    if last and last[0] in _TRUE and len(last) == 1:
        return 0
    if last and last[0] in _FALSE and len(last) == 1:
        return 1
    if len(last) == 2 and last[0] == "exit" and last[1].isdigit():
        return int(last[1]) % 256
    return None
