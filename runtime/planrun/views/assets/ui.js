/* planrun ui: the routes (the front page is front.js) and a live run page, over the JSON/SSE
   routes of planrun.views.web.
   The run page is the report's RunView, refreshed whenever the server says events were recorded,
   plus a log viewer that polls the selected attempt's log while it grows. */
"use strict";

(() => {
  const { el, SYMBOLS } = PlanViews;
  const app = document.getElementById("app");
  let page = null; // the current page's stop()

  function route() {
    if (page) page.stop();
    // #/runs/RUN, or #/runs/RUN/steps/STEP (a cell of the history grid: that step's log)
    const match = /^#\/runs\/([^/]+)(?:\/steps\/(.+))?$/.exec(location.hash);
    page = match ? runPage(decodeURIComponent(match[1]), match[2] && decodeURIComponent(match[2]))
      : PlanFront.frontPage(app);
  }

  async function getJson(url) {
    const response = await fetch(url, { cache: "no-store" });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  /* --- one run ------------------------------------------------------------------------- */

  function runPage(runId, openStep) {
    const base = `/api/runs/${encodeURIComponent(runId)}`;
    let data = null;
    let inFlight = false;
    let dirty = false;
    let stopped = false;
    const logs = logViewer(base);
    const actions = PlanFront.runActions(runId, route);
    const view = new PlanViews.RunView(app, {
      onSelect: (stepId) => { logs.open(stepId, data); actions.select(stepId); },
    });
    view.nav.prepend(el("a", { href: "#/" }, "← all runs"));
    view.extra.append(actions.node, logs.panel);

    async function refresh() {
      if (inFlight) { dirty = true; return; }
      inFlight = true;
      try {
        data = await getJson(base);
        if (stopped) return;
        view.update(data, Date.now());
        logs.update(data);
        actions.update(data);
        if (openStep) {  // once, on the first snapshot
          const step = openStep;
          openStep = null;
          if (data.steps.some((s) => s.step_id === step)) view.select(step);
        }
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
