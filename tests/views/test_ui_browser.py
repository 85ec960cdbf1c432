"""`planrun ui` in headless Chromium, following a real planrun running in another process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import RunResult, wait_for, write_plan
from test_web_actions import param_plan, ui_actions
from viewkit import gated_plan, latest_run, serving, start_planrun, step_status

from planrun.views.webauth import NO_TOKEN

LIVE = 30_000  # ms: generous, the page reacts within a second


def test_the_page_follows_a_run_as_it_goes(page: Any, tmp_path: Path) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    gate = tmp_path / "gate"
    state = tmp_path / "state"
    planrun = start_planrun(tmp_path, gated_plan(gate))
    try:
        with serving(state) as server:
            wait_for(lambda: step_status(state, "wait") == "running", what="step `wait` running")
            run_id = latest_run(state)
            page.goto(server.login_url)  # the URL planrun ui prints
            page.wait_for_url(server.url)  # the token left the address bar for a cookie
            row = page.locator(f'#runs tr[data-run="{run_id}"]')
            expect(row).to_contain_text("running", timeout=LIVE)
            row.locator("a").click()

            waiting = page.locator('.tile[data-step="wait"]')
            expect(waiting).to_have_attribute("data-status", "running", timeout=LIVE)
            expect(page.locator("#run-status")).to_have_text("running")
            expect(page.locator('#timeline rect.bar[data-step="wait"]')).to_have_count(1)

            failed = page.locator('.tile[data-step="boom"]')
            expect(failed).to_have_attribute("data-status", "failed", timeout=LIVE)
            failed.click()  # a failed step opens on its stderr
            log = page.locator("#log-view")
            expect(log).to_have_attribute("data-stream", "stderr")
            expect(log).to_have_text("kaboom: the disk is lava\n", timeout=LIVE)
            expect(page.locator('#sec-failed article[data-step="boom"]')).to_contain_text("kaboom")

            waiting.click()  # the running step's output, while it is still running
            expect(log).to_have_attribute("data-step", "wait")
            expect(log).to_contain_text("waiting for gate", timeout=LIVE)
            assert "gate open" not in log.inner_text()

            gate.touch()  # let it finish: no sleep, the page must notice by itself
            expect(waiting).to_have_attribute("data-status", "success", timeout=LIVE)
            expect(log).to_contain_text("gate open", timeout=LIVE)
            expect(page.locator('.tile[data-step="after"]')).to_have_attribute(
                "data-status", "success", timeout=LIVE
            )
            expect(page.locator("#run-status")).to_have_text("success", timeout=LIVE)
            expect(page.locator("#run-progress")).to_have_text("3/3")
    finally:
        gate.touch()
        planrun.communicate(timeout=60)
    assert planrun.returncode == 0


def test_the_printed_url_logs_in_once_and_the_page_alone_does_not(
    browser: Any, sample_run: RunResult
) -> None:
    with serving(sample_run.state_dir) as server:
        stranger = browser.new_context()
        try:  # another user's browser, without the token: nothing but the refusal
            answer = stranger.new_page().goto(server.url)
            assert answer.status == 403
            assert answer.text() == json.dumps({"error": NO_TOKEN})
            assert stranger.cookies() == []
        finally:
            stranger.close()

        owner = browser.new_context()
        try:
            page = owner.new_page()
            page.goto(server.login_url)
            page.wait_for_url(server.url)
            (jar,) = owner.cookies()
            assert (jar["name"], jar["value"]) == (f"planrun-ui-{server.server_address[1]}", server.access.token)  # fmt: skip
            assert jar["httpOnly"] and jar["sameSite"] == "Strict" and jar["path"] == "/"
            assert page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it
            page.locator(f'#runs tr[data-run="{sample_run.run_id}"]').wait_for(timeout=LIVE)

            # The page's own requests that would change something pass the CSRF gate (405:
            # no such route yet); the same request without the page's header does not.
            post = """async (withToken) => {
                const csrf = JSON.parse(document.getElementById("ui-data").textContent).csrf;
                const headers = withToken ? {"X-Planrun-CSRF": csrf} : {};
                const answer = await fetch("/api/runs", {method: "POST", headers});
                return [answer.status, await answer.json()];
            }"""
            assert page.evaluate(post, True) == [405, {"error": "POST is not allowed here"}]
            assert page.evaluate(post, False) == [
                403, {"error": "forbidden: missing or wrong X-Planrun-CSRF header"}
            ]  # fmt: skip
            page.reload()  # the cookie alone, from now on
            page.locator(f'#runs tr[data-run="{sample_run.run_id}"]').wait_for(timeout=LIVE)
            page.go_back()  # the tab's history has no entry with the token
            assert page.url == "about:blank"
        finally:
            owner.close()


def test_the_printed_url_works_from_a_link_on_another_site(
    page: Any, sample_run: RunResult
) -> None:
    """A link in a web chat or a notebook: the navigation comes from another site, and the
    browser withholds a SameSite=Strict cookie from a page reached through an HTTP redirect
    from there; the login page goes on by itself instead, so the run list shows."""
    with serving(sample_run.state_dir) as server:
        page.set_content(f'<a id="ui" href="{server.login_url}">planrun ui</a>')  # about:blank
        page.click("#ui")
        page.wait_for_url(server.url)
        page.locator(f'#runs tr[data-run="{sample_run.run_id}"]').wait_for(timeout=LIVE)


def test_start_a_plan_from_the_form_watch_it_live_cancel_resume_and_rerun_a_step(
    page: Any, tmp_path: Path
) -> None:
    """Mission control: the form generated from the plan's params starts a real planrun, the
    page follows it live, and its buttons cancel it, resume it and re-run one step."""
    expect = pytest.importorskip("playwright.sync_api").expect
    gate = tmp_path / "gate"
    plan_file = write_plan(tmp_path, param_plan(gate))
    state = tmp_path / "state"
    with serving(state, plan_files=(str(plan_file),)) as server:
        try:
            page.goto(server.login_url)
            page.wait_for_url(server.url)
            expect(page.locator("#history-empty")).to_be_visible(timeout=LIVE)
            page.click("#start-open")
            expect(page.locator("#start-form")).to_have_attribute("data-plan", "PARAMS")
            expect(page.locator("#param-mode option")).to_have_text(["fast", "slow"])
            expect(page.locator("#param-mode")).to_have_value("fast")  # the default
            expect(page.locator("#param-count")).to_have_attribute("type", "number")
            expect(page.locator("#param-count")).to_have_value("1")
            expect(page.locator("#param-loud")).to_have_attribute("type", "checkbox")
            expect(page.locator("#param-who")).to_have_attribute("required", "")
            page.fill("#param-who", "ada")
            page.select_option("#param-mode", "slow")
            page.fill("#param-count", "3")
            page.check("#param-loud")
            page.click("#start-submit")

            page.wait_for_url(f"{server.url}#/runs/*", timeout=LIVE)
            run_id = page.url.rsplit("/", 1)[1]
            hello = page.locator('.tile[data-step="hello"]')
            expect(hello).to_have_attribute("data-status", "running", timeout=LIVE)
            hello.click()
            log = page.locator("#log-view")
            expect(log).to_contain_text("hello ada slow 3 true", timeout=LIVE)

            page.click("#act-cancel")  # the same graceful stop as Ctrl-C
            expect(page.locator("#run-status")).to_have_text("cancelled", timeout=LIVE)
            expect(hello).to_have_attribute("data-status", "cancelled", timeout=LIVE)
            assert [a["action"] for a in ui_actions(state, run_id)] == ["start", "cancel"]
            history = page.locator("#act-history .ui-action")
            expect(history).to_have_count(2, timeout=LIVE)  # who did what, from the events
            expect(history.nth(1)).to_contain_text("cancel from 127.0.0.1:")

            page.click("text=← all runs")  # the history grid: one column, hover and click
            cell = page.locator(f'.cell[data-run="{run_id}"][data-step="hello"]')
            expect(cell).to_have_attribute("data-status", "cancelled", timeout=LIVE)
            assert cell.get_attribute("title").startswith("hello · cancelled · ")
            cell.click()
            expect(page.locator("#log-view")).to_have_attribute("data-step", "hello", timeout=LIVE)
            expect(page.locator("#log-view")).to_contain_text("hello ada", timeout=LIVE)

            gate.touch()
            page.click("#act-resume")
            expect(page.locator("#run-status")).to_have_text("success", timeout=LIVE)
            assert [a["action"] for a in ui_actions(state, run_id)] == ["start", "cancel", "resume"]

            page.locator('.tile[data-step="after"]').click()
            page.click("#act-rerun")  # a new run of `after` only, with the same params
            page.wait_for_url(lambda url: "#/runs/" in url and run_id not in url, timeout=LIVE)
            expect(page.locator("#run-status")).to_have_text("success", timeout=LIVE)
            expect(page.locator('.tile[data-step="hello"]')).to_have_attribute(
                "data-status", "skipped"
            )
        finally:
            gate.touch()


def test_the_history_grid_filters_by_plan_status_and_date(page: Any, sample_run: RunResult) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    with serving(sample_run.state_dir) as server:
        page.goto(server.login_url)
        page.wait_for_url(server.url)
        grid = page.locator('.plan-grid[data-plan="SAMPLE"]')
        test_cell = grid.locator(f'.cell[data-run="{sample_run.run_id}"][data-step="test"]')
        expect(test_cell).to_have_attribute("data-status", "failed", timeout=LIVE)
        assert (
            test_cell.get_attribute("title")
            == "test · failed · "
            + test_cell.get_attribute("title").split(" · ")[2]
            + " · exit code 3"
        )
        page.select_option("#f-status", "failed")  # the run succeeded (its failure tolerated)
        expect(page.locator("#history-empty")).to_have_text("no runs match these filters")
        assert "status=failed" in page.url
        page.select_option("#f-status", "success")
        expect(grid).to_be_visible(timeout=LIVE)
        page.fill("#f-since", "2099-01-01")
        page.locator("#f-since").dispatch_event("change")
        expect(page.locator("#history-empty")).to_be_visible(timeout=LIVE)
        page.click("#f-clear")
        expect(grid).to_be_visible(timeout=LIVE)
        page.select_option("#f-plan", "SAMPLE")
        expect(grid).to_be_visible(timeout=LIVE)
        assert "plan=SAMPLE" in page.url


def test_the_form_shows_why_a_start_was_refused(page: Any, tmp_path: Path) -> None:
    """The plan file broke after the UI started: the server's one line shows in the form."""
    expect = pytest.importorskip("playwright.sync_api").expect
    plan_file = write_plan(tmp_path, param_plan(tmp_path / "gate"))
    with serving(tmp_path / "state", plan_files=(str(plan_file),)) as server:
        page.goto(server.login_url)
        page.wait_for_url(server.url)
        page.click("#start-open")
        page.fill("#param-who", "ada")
        plan_file.write_text('{"plan_id": "PARAMS", "steps": [{"id": "a"}]}')
        page.click("#start-submit")
        expect(page.locator("#start-error")).to_contain_text(
            f"{plan_file} has errors; nothing was run", timeout=LIVE
        )
        assert page.url == server.url  # still on the form
        assert server.actions.still_running() == []
