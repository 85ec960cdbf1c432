"""Every diagnostic code of the condition language (docs/conditions.md), for `planc explain`.

Parsing and local checks live in planc.conditions; graph checks in planc.rules.conditions.
"""

from __future__ import annotations

CODES: dict[str, tuple[str, str]] = {
    "condition-syntax": (
        "a condition is not valid syntax",
        "The condition text does not follow the grammar (docs/conditions.md). Comparisons do not"
        " chain, `=` is not a comparison and the keywords are lowercase.\n\n"
        '    condition: "steps.test.exit_code = 0"     # bad\n'
        '    condition: "steps.test.exit_code == 0"    # good',
    ),
    "condition-too-complex": (
        "a condition is too long or too deeply nested",
        "A condition may have at most 4096 characters, 100 nested parentheses and 100 levels of"
        " `and`/`or`/`not`/comparison nesting. Longer logic belongs in a step's command.\n\n"
        '    condition: "((((((...))))))"              # bad: 101 nested parentheses',
    ),
    "condition-bad-literal": (
        "a number or string literal cannot be represented",
        "Integers must fit in 64 bits, floats must be finite, and a string may only use the"
        " escapes \\\\ \\' \\\" \\n \\t \\r.\n\n"
        "    condition: \"env.PATH == 'C:\\\\bin'\"       # bad: \\b is not an escape\n"
        "    condition: \"env.PATH == 'C:\\\\\\\\bin'\"     # good",
    ),
    "condition-bad-reference": (
        "a name in a condition is not a valid reference",
        "A condition reads `steps.<id>.<attr>` (or its alias `prev.<id>.<attr>`) and"
        " `env.NAME`; any other bare word is an error (strings need quotes).\n\n"
        '    condition: "steps.test == success"        # bad: no attribute, unquoted string\n'
        "    condition: \"steps.test.status == 'success'\"",
    ),
    "condition-unknown-attribute": (
        "a step reference names an attribute that does not exist",
        "A step has four attributes: status, exit_code, attempts and duration_sec.\n\n"
        "    condition: \"steps.test.stauts == 'failed'\"   # bad\n"
        "    condition: \"steps.test.status == 'failed'\"   # good",
    ),
    "condition-unknown-status": (
        "a status is compared with a string that is not a step status",
        "A step a condition reads has finished, so its status is one of success, failed,"
        " timed_out, skipped, upstream_failed or cancelled (never pending or running). Statuses"
        " are lowercase.\n\n"
        "    condition: \"steps.test.status == 'succes'\"   # bad\n"
        "    condition: \"steps.test.status == 'success'\"  # good",
    ),
    "condition-type-mismatch": (
        "a comparison between values that can never be equal",
        "Values of different types are never equal: `==` between them is always false and"
        " `!=` always true. exit_code and attempts are numbers, env values are strings.\n\n"
        "    condition: \"steps.test.exit_code == '1'\"     # bad\n"
        '    condition: "steps.test.exit_code == 1"       # good',
    ),
    "condition-invalid-ordering": (
        "`<`, `<=`, `>` or `>=` on something that is not a number",
        "Only numbers have an order (exit_code, attempts, duration_sec, number literals);"
        " statuses, strings, booleans and null do not.\n\n"
        "    condition: \"steps.test.status < 'failed'\"    # bad\n"
        "    condition: \"steps.test.status in ['failed', 'timed_out']\"",
    ),
    "condition-in-needs-list": (
        "`in` / `not in` without a list on the right",
        "The right side of `in` and `not in` is a list of literals in brackets.\n\n"
        "    condition: \"steps.test.status in 'failed'\"   # bad\n"
        "    condition: \"steps.test.status in ['failed']\"",
    ),
    "condition-not-boolean": (
        "a condition, or an operand of and/or/not, is not true or false",
        "A condition (and each side of `and`/`or`, and the operand of `not`) must be a"
        " comparison, `true` or `false`; a bare reference has no truth value.\n\n"
        '    condition: "env.DEPLOY"                      # bad\n'
        "    condition: \"env.DEPLOY == 'true'\"            # good",
    ),
    "condition-unknown-step": (
        "a condition reads a step that does not exist",
        "Every `steps.<id>` in a condition must name a step of the same plan.\n\n"
        "    condition: \"steps.tset.status == 'success'\"  # bad: did you mean `test`?",
    ),
    "condition-not-upstream": (
        "a condition reads a step that is not upstream of its own step",
        "A condition is evaluated when its step's dependencies have finished, so it may only"
        " read steps the step depends on, directly or transitively (never the step itself).\n\n"
        "    - id: deploy\n"
        "      depends_on: [build]\n"
        "      condition: \"steps.test.status == 'success'\"  # bad: add test to depends_on",
    ),
    "condition-never-true": (
        "a condition can never be true under the step's trigger rule",
        "The trigger rule decides which outcomes of the direct dependencies the step can see:"
        " under all_success (the default) every dependency succeeded, unless its on_failure"
        " is continue or fallback_step. A condition that rules out every such outcome means"
        " the step is always skipped.\n\n"
        "    - id: notify\n"
        "      depends_on: [test]\n"
        "      condition: \"steps.test.status == 'failed'\"   # bad: never runs\n"
        "      trigger_rule: one_failed                      # the fix",
    ),
    "condition-always-true": (
        "a condition is always true under the step's trigger rule (warning)",
        "The trigger rule already guarantees what the condition tests, so the condition changes"
        " nothing; remove it.\n\n"
        "    - id: commit\n"
        "      depends_on: [test]\n"
        "      condition: \"steps.test.status == 'success'\"  # redundant under all_success",
    ),
}
