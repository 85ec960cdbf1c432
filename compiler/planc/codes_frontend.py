"""Every diagnostic code of the load and schema stages, for `planc explain` and the docs.

Each entry: code → (one-line summary, explanation with a small bad example and its fix).
"""

from __future__ import annotations

CODES: dict[str, tuple[str, str]] = {
    # -- reading the file ---------------------------------------------------------------------
    "io-error": (
        "the plan file cannot be read",
        "The path does not exist, is a directory, or is not readable by you.\n\n"
        "    planc compile plans/chekin.yaml     # bad: no such file\n"
        "    planc compile plans/checkin.yaml",
    ),
    "file-too-large": (
        "the plan file is larger than 32 MiB",
        "planc refuses plan files over 32 MiB (33554432 bytes) before reading them: even a"
        " 100,000-step plan is smaller. A file that large is almost always a mistake, such as"
        " a log or a generated artefact given by accident. Split a truly huge plan into several"
        " plans.",
    ),
    "too-many-items": (
        "the plan file holds more than 1,200,000 lines, commas and brackets",
        "planc counts the lines, commas, `[` and `{` of a plan before parsing it and refuses more"
        " than 1,200,000: each value of a plan needs at least one of them, and what a plan holds"
        " (not its size in bytes) is what loading it costs in memory. A 100,000-step plan has"
        " about 950,000. A comma or bracket inside a string counts too. Split a larger plan into"
        " several plans.",
    ),
    "too-many-steps": (
        "the plan has more than 100,000 steps",
        "Checking and compiling a plan costs memory for each step; past 100,000 steps it could"
        " exceed 1 GiB. Split a larger plan into several plans.",
    ),
    "invalid-utf8": (
        "the plan file is not valid UTF-8",
        "Plans are UTF-8 text (a byte-order mark is accepted and skipped). The diagnostic points"
        " at the first byte that is not valid UTF-8, typically a character saved in Latin-1 or"
        " Windows-1252 by an old editor.\n\n"
        "    description: caf\\xe9 deploy          # bad: the é is the Latin-1 byte 0xE9\n"
        "    description: café deploy             # good: saved as UTF-8",
    ),
    "empty-plan": (
        "the plan file has no content",
        "The file is empty, or holds only whitespace, comments or a bare `---`. A plan needs at"
        " least `plan_id` and `steps`.\n\n"
        "    plan_id: nightly\n"
        "    steps:\n"
        "      - id: build\n"
        "        command: make",
    ),
    "not-a-mapping": (
        "the top level of the plan is not a mapping",
        "A plan is a mapping of keys (`plan_id`, `steps`, ...) to values. A file whose top level"
        " is a list or a single value is not a plan.\n\n"
        "    - id: build                          # bad: a list of steps on its own\n"
        "      command: make\n\n"
        "    plan_id: nightly                     # good\n"
        "    steps:\n"
        "      - id: build\n"
        "        command: make",
    ),
    "load-error": (
        "the plan could not be loaded because of an unexpected error",
        "The loader met a condition it does not handle (a bug in planc, not in your plan)."
        " The message names the error; please report it with the plan that triggers it.",
    ),
    # -- syntax -------------------------------------------------------------------------------
    "json-syntax": (
        "the plan is not valid JSON",
        "Files ending in .json (or starting with `{`) are read as strict JSON (RFC 8259):"
        " double-quoted strings and keys, no comments, no trailing commas.\n\n"
        '    {"plan_id": "nightly", "steps": [],}  # bad: trailing comma\n'
        '    {"plan_id": "nightly", "steps": []}',
    ),
    "yaml-syntax": (
        "the plan is not valid YAML",
        "The YAML parser cannot read the file at this point; the message says what it found."
        " Common causes are a tab used for indentation, a `key: value` nested under a plain"
        " value, or an unclosed quote or bracket.\n\n"
        "    command: make\n"
        "      args: [all]                        # bad: indented under a plain value\n\n"
        "    command: make\n"
        "    args: [all]",
    ),
    "yaml-version": (
        "the plan declares a YAML version other than 1.2",
        "Plans are read as YAML 1.2 only. Under YAML 1.1, `yes`, `no`, `on` and `off` are"
        " booleans and `010` is octal, so a plan that asks for 1.1 could mean something other"
        " than what planc reads.\n\n"
        "    %YAML 1.1                            # bad\n"
        "    ---\n"
        "    plan_id: nightly\n\n"
        "Remove the `%YAML` line (or write `%YAML 1.2`).",
    ),
    "yaml-directive": (
        "the plan uses a YAML directive other than %YAML 1.2",
        "Directives such as `%TAG` only serve features plans do not allow (tags).\n\n"
        "    %TAG !e! tag:example.com,2000:       # bad\n"
        "    ---\n\n"
        "Remove the directive line.",
    ),
    "yaml-tag": (
        "the plan uses a YAML tag",
        "Explicit tags (`!!str`, `!!python/object:...`, `!custom`) are refused: some loaders"
        " execute them, and the rest only change types behind the reader's back. Write plain"
        " values and quote strings.\n\n"
        "    timeout_sec: !!int 600               # bad\n"
        "    version: !!str 1.0                   # bad\n"
        "    timeout_sec: 600                     # good\n"
        "    version: '1.0'                       # good",
    ),
    "yaml-anchor": (
        "the plan defines a YAML anchor",
        "Anchors (`&name`) and aliases (`*name`) are refused: they make a plan hard to read,"
        " hide what each step really contains, and enable 'billion laughs' expansion attacks."
        " Write the value out where it is needed, or use `globals` for shared settings.\n\n"
        "    env: &common {CI: 'true'}            # bad\n"
        "    env: {CI: 'true'}                    # good",
    ),
    "yaml-alias": (
        "the plan uses a YAML alias",
        "Aliases (`*name`) repeat an anchored value; they are refused like anchors (see"
        " yaml-anchor). Write the value out in full.\n\n"
        "    env: *common                         # bad\n"
        "    env: {CI: 'true'}                    # good",
    ),
    "merge-key": (
        "the plan uses a YAML merge key `<<`",
        "Merge keys are not part of YAML 1.2 and need anchors, which plans refuse. Write the"
        " keys out in full; settings shared by every step belong in `globals`.\n\n"
        "    - <<: *defaults                      # bad\n"
        "      id: build\n\n"
        "    - id: build                          # good\n"
        "      retries: 2",
    ),
    "non-string-key": (
        "a mapping key is not a string",
        "Every key in a plan is a string. In YAML an unquoted `1`, `true`, `null` or `[a]` as a"
        " key is a number, boolean, null or list; quote it if you mean the text.\n\n"
        "    env:\n"
        "      1: first                           # bad: the key is the integer 1\n\n"
        "    env:\n"
        "      FIRST: first                       # good",
    ),
    "duplicate-key": (
        "a key appears twice in the same mapping",
        "JSON and YAML parsers usually keep the last value silently; planc refuses the file"
        " instead, and the message says where the first one is.\n\n"
        "    - id: build\n"
        "      command: make\n"
        "      command: make all                  # bad: second `command`",
    ),
    "multiple-documents": (
        "the YAML file holds more than one document",
        "A plan file is one YAML document. A second `---` starts another document, which"
        " would otherwise be ignored silently.\n\n"
        "    plan_id: a\n"
        "    steps: [...]\n"
        "    ---                                  # bad: a second plan in the same file\n"
        "    plan_id: b\n\n"
        "Put each plan in its own file.",
    ),
    "ambiguous-boolean": (
        "an unquoted yes/no/on/off/y/n value",
        "YAML 1.1 reads these words as booleans, YAML 1.2 (which planc uses) as strings, so the"
        " same file means different things to different tools. planc refuses them unquoted:"
        " write true/false for a boolean, or quote the word for a string.\n\n"
        "    shell: yes                           # bad\n"
        "    env: {DEBUG: on}                     # bad\n"
        "    shell: true                          # good\n"
        "    env: {DEBUG: 'on'}                   # good",
    ),
    "non-finite-number": (
        "a number is infinite or not a number",
        "NaN and infinity cannot be written in the IR (strict JSON) and make no sense as a"
        " timeout or a delay. This covers `.inf`/`.nan` in YAML, `NaN`/`Infinity` in JSON, and"
        " numbers too large for a float such as `1e400`.\n\n"
        "    timeout_sec: .inf                    # bad: for no timeout, leave it out\n"
        "    timeout_sec: 86400                   # good",
    ),
    "number-too-large": (
        "an integer has more than 50 digits",
        "No value in a plan needs more than 50 digits, and converting huge integers is slow,"
        " so planc refuses them.\n\n"
        "    retries: 100000000000000000000000000000000000000000000000000000   # bad\n"
        "    retries: 3                                                        # good",
    ),
    "too-deep": (
        "the plan nests more than 64 levels deep",
        "A plan is about five levels deep (plan → steps → step → env → value). Nesting beyond"
        " 64 levels, usually inside `metadata` or `ui_hints` or from generated input, is"
        " refused so that no stage can exhaust its stack.\n\n"
        "    metadata: [[[[[[ ... ]]]]]]           # bad: 65 levels",
    ),
    "invalid-unicode": (
        "a string contains an unpaired surrogate escape",
        "An escape such as `\\ud83d` on its own is half of a UTF-16 pair and is not a"
        " character; it cannot be written as UTF-8. Use the character itself or both halves"
        " of the pair.\n\n"
        '    "name": "deploy \\ud83d"              # bad\n'
        '    "name": "deploy \\ud83d\\ude80"        # good (🚀)',
    ),
    # -- schema -------------------------------------------------------------------------------
    "unknown-key": (
        "a key that plans do not have",
        "Every mapping except `metadata` and `ui_hints` accepts only the keys the plan schema"
        " defines (see docs/plan-reference.md), so a misspelt key is an error instead of being"
        " ignored. The hint suggests the closest known key.\n\n"
        "    - id: test\n"
        "      depend_on: [build]                 # bad\n"
        "      depends_on: [build]                # good",
    ),
    "missing-key": (
        "a required key is missing",
        "A plan needs `plan_id` and `steps`; every step needs `id` and `command`; a step with"
        " `on_failure: fallback_step` needs `fallback`.\n\n"
        "    - id: build                          # bad: no command\n\n"
        "    - id: build                          # good\n"
        "      command: make",
    ),
    "wrong-type": (
        "a value has the wrong type",
        "Each key expects one type: strings, numbers (durations are plain seconds), integers,"
        " true/false, lists or mappings. Quoting matters in YAML: '10' is a string, 10 a"
        " number. Environment values are always strings.\n\n"
        "    timeout_sec: 10m                     # bad: a string\n"
        "    timeout_sec: 600                     # good\n"
        "    env: {PORT: 8080}                    # bad: a number\n"
        "    env: {PORT: '8080'}                  # good",
    ),
    "invalid-value": (
        "a value is not one of the allowed choices",
        "`trigger_rule` and `on_failure` take one of a fixed set of words; the message lists"
        " them and the hint suggests the closest.\n\n"
        "    on_failure: skip                     # bad\n"
        "    on_failure: skip_dependents          # good",
    ),
    "invalid-id": (
        "a step id or the plan id is not valid",
        "Step ids (in `id` and `fallback`) start with a letter or `_` and continue with"
        " letters, digits, `_`, `.` or `-`, at most 128 characters, so that they can be written"
        " unquoted in conditions and file names. The plan id may also start with a digit. A"
        ' newline, even a final one (`id: "a\\n"`), is refused: ids are printed on terminals'
        " and in CI logs, where a newline could forge a line.\n\n"
        "    - id: run tests                      # bad: a space\n"
        "    - id: run_tests                      # good",
    ),
    "invalid-env-name": (
        "an environment variable name is not valid",
        "Names in `env` start with a letter or `_` and contain only letters, digits and `_`,"
        " which is what every shell and operating system accepts.\n\n"
        "    env: {MY-VAR: x}                     # bad: a dash\n"
        "    env: {MY_VAR: x}                     # good",
    ),
    "out-of-range": (
        "a number is outside its allowed range",
        "Timeouts must be greater than 0, delays and counts at least 0, `retries` at most 100,"
        " `retry_backoff` at least 1 and `max_concurrency` at least 1.\n\n"
        "    retries: -1                          # bad\n"
        "    retries: 0                           # good",
    ),
    "duplicate-item": (
        "a list names the same item twice",
        "`depends_on`, `provides` and `consumes` list each item at most once; the diagnostic"
        " points at the repetition.\n\n"
        "    depends_on: [build, test, build]     # bad\n"
        "    depends_on: [build, test]            # good",
    ),
    "empty-value": (
        "a value that must not be empty is empty",
        "`plan_id` and `command` must not be empty strings, and `steps` must hold at least one"
        " step.\n\n"
        "    command: ''                          # bad\n"
        "    command: make                        # good",
    ),
    "fallback-without-policy": (
        "`fallback` is set without `on_failure: fallback_step`",
        "A fallback step runs only when the failing step's policy is `fallback_step`; with any"
        " other policy the `fallback` key would be silently ignored.\n\n"
        "    - id: deploy                         # bad: on_failure defaults to abort\n"
        "      command: ./deploy.sh\n"
        "      fallback: rollback\n\n"
        "    - id: deploy                         # good\n"
        "      command: ./deploy.sh\n"
        "      on_failure: fallback_step\n"
        "      fallback: rollback",
    ),
}
