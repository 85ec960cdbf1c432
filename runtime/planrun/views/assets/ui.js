/* planrun ui: the runs list and a live run page, over the JSON/SSE routes of planrun.views.web.
   The run page is the report's RunView, refreshed whenever the server says events were recorded,
   plus a log viewer that polls the selected attempt's log while it grows. */
"use strict";

(() => {
  const { el, parseTs, fmtDuration, fmtTime, SYMBOLS } = PlanViews;
  const app = document.getElementById("app");
  let page = null; // the current page's stop()

  function route() {
    if (page) page.stop();
    const match = /^#\/runs\/(.+)$/.exec(location.hash);
    page = match ? runPage(decodeURIComponent(match[1])) : runsPage();
  }

  async function getJson(url) {
    const response = await fetch(url, { cache: "no-store" });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  /* --- the runs list ------------------------------------------------------------------- */

  function runsPage() {
    let timer = null;
    let stopped = false;
    const body = el("main", {}, el("p", { class: "muted" }, "loading…"));
    app.replaceChildren(el("header", { class: "top" }, el("h1", {}, "planrun runs")), body);
    async function load() {
      try {
        const data = await getJson("/api/runs");
        if (stopped) return;
        body.replaceChildren(watchersPanel(data.watchers || []), data.runs.length ? runsTable(data.runs)
          : el("p", { class: "empty" }, data.message || "no runs yet"));
      } catch (error) {
        body.replaceChildren(el("p", { class: "empty" }, String(error)));
      }
      if (!stopped) timer = setTimeout(load, 2000);
    }
    load();
    return { stop() { stopped = true; clearTimeout(timer); } };
  }

  function runsTable(runs) {
    const head = el("tr", {}, ...["Run", "Plan", "Status", "Started", "Duration", "Steps"].map((h) => el("th", {}, h)));
    const rows = runs.map((run) => el("tr", { "data-run": run.run_id },
      el("td", { class: "mono" }, el("a", { href: `#/runs/${encodeURIComponent(run.run_id)}` }, run.run_id)),
      el("td", {}, run.plan_id),
      el("td", {}, el("span", { class: `badge s-${run.status}` }, run.status)),
      el("td", {}, fmtTime(parseTs(run.started_at))),
      el("td", {}, fmtDuration(run.elapsed_sec)),
      el("td", {}, `${run.done}/${run.total} `, ...Object.entries(run.step_counts).map(([s, n]) =>
        el("span", { class: `s-${s}`, title: s }, ` ${SYMBOLS[s] || s}${n}`)))));
    return el("table", { class: "runs", id: "runs" }, el("thead", {}, head), el("tbody", {}, ...rows));
  }

  /* `planrun watch` processes: what each is doing, what last triggered it, when it runs next. */
  function watchersPanel(watchers) {
    if (!watchers.length) return "";
    const head = el("tr", {}, ...["Watcher", "Plan", "State", "Last trigger", "Next run", "Last run", "Runs"]
      .map((h) => el("th", {}, h)));
    const rows = watchers.map((w) => {
      const trigger = w.last_trigger;
      const paths = trigger && trigger.paths.length ? `: ${trigger.paths.slice(0, 3).join(", ")}` : "";
      const last = w.last_run;
      return el("tr", { "data-watcher": w.session },
        el("td", { class: "mono" }, w.session),
        el("td", {}, w.plan_id),
        el("td", {}, el("span", { class: `badge w-${w.state}` }, w.state.replace("_", " "))),
        el("td", {}, trigger ? `${trigger.kind} at ${fmtTime(parseTs(trigger.at))}${paths}` : "—"),
        el("td", {}, w.next_run_at ? `${fmtTime(parseTs(w.next_run_at))} (${w.next_run_reason})`
          : w.state === "running" && w.pending_changes ? `after this run (${w.pending_changes} changes)`
          : w.state === "running" ? "on a change" : "on the next change"),
        el("td", {}, last ? el("a", { href: `#/runs/${encodeURIComponent(last.run_id)}` },
          `${last.status} ${last.run_id}`) : "—"),
        el("td", {}, String(w.runs)));
    });
    return el("section", { id: "watchers" }, el("h2", {}, "Watchers"),
      el("table", { class: "runs watchers" }, el("thead", {}, head), el("tbody", {}, ...rows)));
  }

  /* --- one run ------------------------------------------------------------------------- */

  function runPage(runId) {
    const base = `/api/runs/${encodeURIComponent(runId)}`;
    let data = null;
    let inFlight = false;
    let dirty = false;
    let stopped = false;
    const logs = logViewer(base);
    const view = new PlanViews.RunView(app, { onSelect: (stepId) => logs.open(stepId, data) });
    view.nav.prepend(el("a", { href: "#/" }, "← all runs"));
    view.extra.append(logs.panel);

    async function refresh() {
      if (inFlight) { dirty = true; return; }
      inFlight = true;
      try {
        data = await getJson(base);
        if (stopped) return;
        view.update(data, Date.now());
        logs.update(data);
      } catch (error) {
        view.header.replaceChildren(el("h1", {}, String(error)));
      } finally {
        inFlight = false;
      }
      if (dirty && !stopped) { dirty = false; refresh(); }
    }

    const events = new EventSource(`${base}/events?after=0`);
    events.addEventListener("change", refresh);
    events.addEventListener("end", () => { events.close(); refresh(); });
    const ticker = setInterval(() => view.tick(Date.now()), 1000);
    refresh();
    return {
      stop() { stopped = true; events.close(); clearInterval(ticker); logs.stop(); },
    };
  }

  /* --- the log viewer ------------------------------------------------------------------ */

  function logViewer(base) {
    const panel = el("section", { id: "log-panel", class: "panel", hidden: true });
    let current = null; // {step, attempt, stream, pinned, offset, timer}

    function open(stepId, data, attempt, stream) {
      stop();
      const step = data.steps.find((s) => s.step_id === stepId);
      const failed = step && (step.status === "failed" || step.status === "timed_out");
      current = { step: stepId, attempt: attempt || null, pinned: Boolean(attempt),
        stream: stream || (failed ? "stderr" : "stdout"), offset: 0 };
      render(data);
    }

    function render(data) {
      panel.hidden = false;
      const step = data.steps.find((s) => s.step_id === current.step);
      const attempts = data.attempts.filter((a) => a.step_id === current.step);
      const latest = attempts.length ? attempts[attempts.length - 1].attempt : null;
      current.attempt = current.pinned ? current.attempt : latest;
      current.latest = latest;
      const attemptTabs = attempts.map((a) => el("button", {
        "aria-pressed": a.attempt === current.attempt ? "true" : "false", class: `s-${a.status}`,
        onclick: () => open(current.step, data, a.attempt, current.stream),
      }, `attempt ${a.attempt} ${SYMBOLS[a.status] || ""}`));
      const streamTabs = ["stdout", "stderr"].map((s) => el("button", {
        "aria-pressed": s === current.stream ? "true" : "false", "data-stream": s,
        onclick: () => open(current.step, data, current.pinned ? current.attempt : null, s),
      }, s));
      const pre = el("pre", { class: `log ${current.stream}`, id: "log-view", "data-step": current.step,
        "data-attempt": current.attempt || "", "data-stream": current.stream });
      const title = el("h2", {}, `Log of ${current.step} `,
        el("span", { class: `badge s-${step.status}` }, step.status), " ",
        el("span", { class: "muted mono" }, step.command));
      panel.replaceChildren(title, el("div", { class: "tabs" }, ...attemptTabs, el("span", {}, " "), ...streamTabs), pre);
      current.pre = pre;
      if (current.attempt === null) pre.append(el("span", { class: "empty" }, "not started yet"));
      else poll();
    }

    async function poll() {
      const mine = current;
      const query = `attempt=${mine.attempt}&stream=${mine.stream}&offset=${mine.offset}`;
      try {
        const chunk = await getJson(`${base}/logs/${encodeURIComponent(mine.step)}?${query}`);
        if (mine !== current) return;
        mine.offset = chunk.offset;
        if (chunk.text) mine.pre.append(chunk.text);
        if (chunk.complete) {
          mine.pre.dataset.complete = "true";
          if (!mine.pre.textContent) mine.pre.append(el("span", { class: "empty" }, "(empty)"));
          return;
        }
      } catch (error) {
        mine.pre.append(el("span", { class: "empty" }, String(error)));
        return;
      }
      mine.timer = setTimeout(poll, 700);
    }

    /* A new snapshot: follow a retry's new attempt, or start once a pending step starts. */
    function update(data) {
      if (!current) return;
      const attempts = data.attempts.filter((a) => a.step_id === current.step);
      const latest = attempts.length ? attempts[attempts.length - 1].attempt : null;
      if (!current.pinned && latest !== current.latest) {
        open(current.step, data, null, current.stream);
        return;
      }
      const step = data.steps.find((s) => s.step_id === current.step);
      const badge = panel.querySelector("h2 .badge");
      if (step && badge) {
        badge.className = `badge s-${step.status}`;
        badge.textContent = step.status;
      }
    }

    function stop() {
      if (current) clearTimeout(current.timer);
    }

    return { panel, open, update, stop };
  }

  window.addEventListener("hashchange", route);
  route();
})();
