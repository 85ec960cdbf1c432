"""One-line mutations of the seed's pipelines that break the rules their docs state, and the
counterexample `planc check` must print for each (tests/analysis/test_invariants.py)."""

from __future__ import annotations

# (plan, what changes, old text, new text, the counterexample)
MUTATIONS: list[tuple[str, str, str, str, str]] = [
    (
        "checkin",
        "continue",
        "    args: [check, .]\n    timeout_sec: 600\n",
        "    args: [check, .]\n    timeout_sec: 600\n    on_failure: continue\n",
        "lint_python fails -> tolerated by `on_failure: continue` -> safe_commit's rule all_success"
        " is met -> safe_commit runs without lint_python.success and run_tests.success",
    ),
    (
        "checkin",
        "trigger rule",
        "    depends_on: [run_tests]\n    timeout_sec: 300\n",
        "    depends_on: [run_tests]\n    trigger_rule: all_done\n    timeout_sec: 300\n",
        "run_tests fails -> the plan aborts -> safe_commit's rule all_done is met -> safe_commit"
        " runs without lint_python.success and run_tests.success",
    ),
    (
        "checkin",
        "dependency",
        "    depends_on: [run_tests]\n    timeout_sec: 300\n",
        "    depends_on: [lint_python]\n    timeout_sec: 300\n",
        "run_tests has not finished when safe_commit starts (safe_commit does not wait for it) ->"
        " safe_commit's rule all_success is met -> safe_commit runs without lint_python.success"
        " and run_tests.success",
    ),
    (
        "ai-codegen",
        "continue",
        "    depends_on: [generate]\n    timeout_sec: 600\n",
        "    depends_on: [generate]\n    timeout_sec: 600\n    on_failure: continue\n",
        "test fails -> tolerated by `on_failure: continue` -> commit's rule all_success is met ->"
        " commit runs without test.success",
    ),
    (
        "ai-codegen",
        "trigger rule",
        "    depends_on: [test, list_tasks]\n    timeout_sec: 120\n",
        "    depends_on: [test, list_tasks]\n    trigger_rule: all_done\n    timeout_sec: 120\n",
        "test fails -> the plan aborts -> commit's rule all_done is met -> commit runs without"
        " test.success",
    ),
    (
        "ai-codegen",
        "dependency",
        "    depends_on: [test, list_tasks]\n    timeout_sec: 120\n",
        "    depends_on: [generate, list_tasks]\n    timeout_sec: 120\n",
        "test has not finished when commit starts (commit does not wait for it) -> commit's rule"
        " all_success is met -> commit runs without test.success",
    ),
    (
        "safe-merge",
        "condition",
        "    depends_on: [validate]\n    condition: \"steps.validate.status == 'success'\"\n",
        "    depends_on: [validate]\n",
        "validate fails -> recovered by fallback `restore` -> push's rule all_success is met ->"
        " push runs without validate.success",
    ),
    (
        "git-autosync",
        "continue",
        "    depends_on: [fetch]\n",
        "    depends_on: [fetch]\n    on_failure: continue\n",
        "rebase fails -> tolerated by `on_failure: continue` -> push's rule all_success is met ->"
        " push runs when rebase.failed",
    ),
    (
        "git-autosync",
        "trigger rule",
        "    depends_on: [rebase]\n    retries: 3\n",
        "    depends_on: [rebase]\n    trigger_rule: all_done\n    retries: 3\n",
        "rebase fails -> the plan aborts -> push's rule all_done is met -> push runs when"
        " rebase.failed",
    ),
    (
        "git-autosync",
        "dependency",
        "    depends_on: [rebase]\n    retries: 3\n",
        "    depends_on: [fetch]\n    retries: 3\n",
        "rebase has not finished when push starts (push does not wait for it) -> push's rule"
        " all_success is met -> push runs without rebase.success",
    ),
    (
        "phases",
        "continue",
        "--workstream, code]\n",  # in plans/fragments/phase.yaml: every phase's code step
        "--workstream, code]\n    on_failure: continue\n",
        "p0.code fails -> tolerated by `on_failure: continue` -> p0.gate's rule all_success is met"
        " -> p0.gate runs without p0.code.success and p0.docs.success",
    ),
    (
        "phases",
        "trigger rule",
        "    depends_on: [code, docs]\n",  # the fragment's gate
        "    depends_on: [code, docs]\n    trigger_rule: all_done\n",
        "p0.docs fails -> the plan aborts -> p0.gate's rule all_done is met -> p0.gate runs"
        " without p0.code.success and p0.docs.success",
    ),
    (
        "phases",
        "dependency",
        "    id: p1\n    with: {phase: 1, title: Design}\n    depends_on: [p0.gate]\n",
        "    id: p1\n    with: {phase: 1, title: Design}\n",
        "p0.gate has not finished when p1.code starts (p1.code does not wait for it) -> p1.code"
        " runs without p0.gate.success",
    ),
]

# The file each pipeline's mutation edits, when not the plan itself (plans/ relative).
MUTATED_FILE = {
    ("phases", "continue"): "fragments/phase.yaml",
    ("phases", "trigger rule"): "fragments/phase.yaml",
}
