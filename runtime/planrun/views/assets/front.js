/* planrun ui: the front page ("mission control") and the actions, over planrun.views.web.
   The page is the start form and then a list of panels built by the factories in
   PlanFront.PANELS, each `(ctx) => {id, node, load(filters, grid, runs)}`; another panel is
   one more factory in that list (docs/views.md). Statuses are drawn from the server's tables
   (the symbols PlanViews read from the page; the colours are CSS generated from views/style.py). */
"use strict";

const PlanFront = (() => {
  const { el, parseTs, fmtDuration, fmtTime, SYMBOLS } = PlanViews;
  const UI = JSON.parse(document.getElementById("ui-data").textContent);
  const symbol = (status) => SYMBOLS[status] || "?";
  const RUN_STATUSES = ["running", "success", "failed", "cancelled", "interrupted"];

  /* A button acting on click only (el's click handler also answers Enter, which on a button
     would act twice: two cancels are a kill). */
  function button(attrs, text, action) {
    const node = el("button", { type: "button", ...attrs }, text);
    node.addEventListener("click", action);
    return node;
  }

  async function getJson(url) {
    const response = await fetch(url, { cache: "no-store" });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  /* An action: POST with the page's CSRF token (webauth.py); the answer's error, if any. */
  async function postJson(url, body) {
    const response = await fetch(url, {
      method: "POST", cache: "no-store",
      headers: { "X-Planrun-CSRF": UI.csrf, "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  /* --- filters: kept in the address (#/?plan=…&status=…), so a view can be linked --------- */

  function readFilters() {
    const query = location.hash.includes("?") ? location.hash.slice(location.hash.indexOf("?") + 1) : "";
    const params = new URLSearchParams(query);
    const filters = {};
    for (const key of ["plan", "status", "since", "until"]) if (params.get(key)) filters[key] = params.get(key);
    return filters;
  }

  function writeFilters(filters) {
    const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString();
    location.hash = query ? `#/?${query}` : "#/";
  }

  function filterPanel() {
    const node = el("section", { id: "sec-filters", class: "filters" });
    let planIds = [];
    function select(id, label, values, current) {
      const box = el("select", { id, "aria-label": label },
        el("option", { value: "" }, `all ${label === "status" ? "statuses" : `${label}s`}`),
        ...values.map((v) => el("option", { value: v, selected: v === current ? "" : null }, v)));
      return box;
    }
    function render(filters) {
      const plan = select("f-plan", "plan", planIds, filters.plan);
      const status = select("f-status", "status", RUN_STATUSES, filters.status);
      const since = el("input", { type: "date", id: "f-since", value: filters.since || "", "aria-label": "since" });
      const until = el("input", { type: "date", id: "f-until", value: filters.until || "", "aria-label": "until" });
      const apply = () => writeFilters({ plan: plan.value, status: status.value, since: since.value, until: until.value });
      for (const input of [plan, status, since, until]) input.addEventListener("change", apply);
      node.replaceChildren(el("span", { class: "muted" }, "Filter runs:"), plan, status,
        el("label", {}, "from ", since), el("label", {}, "to ", until),
        button({ class: "chip", id: "f-clear" }, "clear", () => writeFilters({})));
    }
    return {
      id: "filters", node,
      load(filters, grid) {
        const ids = grid ? grid.plan_ids : planIds;
        const focused = node.contains(document.activeElement);
        if (!node.childNodes.length || (ids.join() !== planIds.join() && !focused)) {
          planIds = ids;
          render(filters);
        }
      },
    };
  }

  /* --- the history grid: per plan, runs × steps (Airflow's grid) -------------------------- */

  function historyPanel(ctx) {
    const node = el("section", { id: "sec-history" });
    let drawn = null; // what is on screen: redrawn only when it changed, so a hover stays
    return {
      id: "history", node,
      load(filters, grid) {
        if (!grid) return;
        const shown = JSON.stringify(grid, (key, value) => (key === "elapsed_sec" ? undefined : value));
        if (shown === drawn) return;
        drawn = shown;
        if (!grid.plans.length) {
          node.replaceChildren(el("p", { class: "empty", id: "history-empty" },
            grid.message || "no runs match these filters"));
          return;
        }
        node.replaceChildren(...grid.plans.map((plan) => planGrid(plan, ctx.openStart)));
      },
    };
  }

  function planGrid(plan, openStart) {
    const head = el("tr", {}, el("th", { class: "step-col" }, "step"), ...plan.runs.map((run) => el("th", {},
      el("a", { class: `run-head badge s-${run.status}`, href: `#/runs/${encodeURIComponent(run.run_id)}`,
        "data-run": run.run_id,
        title: `run ${run.run_id}\n${run.status} · started ${fmtTime(parseTs(run.started_at))} · ${fmtDuration(run.elapsed_sec)}` },
        symbol(run.status)))));
    const rows = plan.steps.map((stepId) => el("tr", {}, el("th", { class: "step-col mono" }, stepId),
      ...plan.runs.map((run) => el("td", {}, cell(run, stepId, run.cells[stepId])))));
    const start = button({ class: "chip", "data-start": plan.plan_id }, "▶ start", () => openStart(plan.plan_id));
    return el("div", { class: "plan-grid panel", "data-plan": plan.plan_id },
      el("h2", {}, `${plan.plan_id} `, el("span", { class: "muted" }, `${plan.runs.length} run(s)`), " ", start),
      el("div", { class: "scroll" }, el("table", { class: "hgrid" }, el("thead", {}, head), el("tbody", {}, ...rows))));
  }

  function cell(run, stepId, info) {
    if (!info) return el("span", { class: "cell none", title: `${stepId}: not in this run` }, "");
    const duration = info.duration_sec !== null ? fmtDuration(info.duration_sec) : "";
    const reason = [info.reason, info.detail].filter(Boolean).join(": ");
    const title = [`${stepId} · ${info.status}`, duration, info.attempts > 1 ? `${info.attempts} attempts` : "",
      reason].filter(Boolean).join(" · ");
    return el("a", { class: `cell s-${info.status}`, "data-run": run.run_id, "data-step": stepId,
      "data-status": info.status, title,
      href: `#/runs/${encodeURIComponent(run.run_id)}/steps/${encodeURIComponent(stepId)}` },
      symbol(info.status));
  }

  /* --- start a plan: a form from the plan's params --------------------------------------- */

  function startPanel() {
    const node = el("section", { id: "sec-start", class: "panel", hidden: true });
    let plans = [];

    async function open(planId) {
      node.hidden = false;
      node.replaceChildren(el("p", { class: "muted" }, "loading plans…"));
      try {
        plans = (await getJson("/api/plans")).plans.filter((p) => p.plan_id);
      } catch (error) {
        node.replaceChildren(el("p", { class: "empty" }, String(error)));
        return;
      }
      if (!plans.length) {
        node.replaceChildren(el("p", { class: "empty", id: "start-none" },
          "no plan to start: give plan files to `planrun ui PLAN…`, or run one from a terminal first"));
        return;
      }
      const chosen = plans.find((p) => p.plan_id === planId) || plans[0];
      render(chosen);
    }

    function render(plan) {
      const picker = el("select", { id: "start-plan", "aria-label": "plan" }, ...plans.map((p) =>
        el("option", { value: p.key, selected: p.key === plan.key ? "" : null },
          `${p.plan_id} (${p.source === "file" ? p.origin : `as run ${p.origin}`})`)));
      picker.addEventListener("change", () => render(plans.find((p) => p.key === picker.value)));
      const fields = Object.entries(plan.params).map(([name, spec]) => field(name, spec));
      const error = el("p", { id: "start-error", class: "error", role: "alert" });
      const form = el("form", { id: "start-form", "data-plan": plan.plan_id },
        el("h2", {}, "Start a plan ", picker),
        plan.description ? el("p", { class: "muted" }, plan.description) : null,
        el("p", { class: "muted mono" }, `steps: ${plan.steps.join(", ")}`),
        fields.length ? el("div", { class: "params" }, ...fields) : el("p", { class: "muted" }, "no params"),
        error,
        el("div", { class: "tabs" },
          el("button", { type: "submit", id: "start-submit" }, "▶ Start run"),
          button({}, "close", () => { node.hidden = true; })));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        error.textContent = "";
        const params = {};
        for (const [name, spec] of Object.entries(plan.params)) {
          const input = form.elements[`param-${name}`];
          if (spec.type === "bool") params[name] = input.checked;
          else if (input.value !== "" || spec.required) params[name] = input.value;
        }
        try {
          const answer = await postJson("/api/start", { plan: plan.key, params });
          node.hidden = true;
          if (answer.run_id) location.hash = `#/runs/${encodeURIComponent(answer.run_id)}`;
        } catch (failure) {
          error.textContent = failure.message;
        }
      });
      node.replaceChildren(form);
    }

    function field(name, spec) {
      const id = `param-${name}`;
      let input;
      if (spec.choices) {
        input = el("select", { id, name: id }, ...spec.choices.map((c) =>
          el("option", { value: String(c), selected: c === spec.default ? "" : null }, String(c))));
      } else if (spec.type === "bool") {
        input = el("input", { id, name: id, type: "checkbox", checked: spec.default ? "" : null });
      } else {
        input = el("input", { id, name: id, type: spec.type === "int" ? "number" : "text",
          step: spec.type === "int" ? "1" : null, value: spec.default === null ? "" : String(spec.default),
          required: spec.required ? "" : null });
      }
      return el("div", { class: "param" },
        el("label", { for: id }, el("b", { class: "mono" }, name), ` ${spec.type}${spec.required ? " (required)" : ""}`),
        input, spec.description ? el("div", { class: "muted" }, spec.description) : null);
    }

    return { id: "start", node, open, load() {} };
  }

  /* --- recent runs (the list the page always had) ---------------------------------------- */

  function runsPanel() {
    const node = el("section", { id: "sec-runs" });
    return {
      id: "runs", node,
      load(filters, grid, runs) {
        if (!runs) return;
        const day = (run) => run.started_at.slice(0, 10);
        const shown = runs.runs.filter((run) => (!filters.plan || run.plan_id === filters.plan)
          && (!filters.status || run.status === filters.status)
          && (!filters.since || day(run) >= filters.since) && (!filters.until || day(run) <= filters.until));
        node.replaceChildren(el("h2", {}, "Recent runs"), shown.length ? runsTable(shown)
          : el("p", { class: "empty" }, runs.message || "no runs yet"));
      },
    };
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
        el("span", { class: `s-${s}`, title: s }, ` ${symbol(s)}${n}`)))));
    return el("table", { class: "runs", id: "runs" }, el("thead", {}, head), el("tbody", {}, ...rows));
  }

  /* `planrun watch` processes: what each is doing, what last triggered it, when it runs next. */
  function watchersPanel() {
    const node = el("div", {});  // holds section#watchers while a watcher is live
    return {
      id: "watchers",
      node,
      load(filters, grid, runs) {
        const watchers = (runs && runs.watchers) || [];
        if (!watchers.length) { node.replaceChildren(); return; }
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
        node.replaceChildren(el("section", { id: "watchers" }, el("h2", {}, "Watchers"),
          el("table", { class: "runs watchers" }, el("thead", {}, head), el("tbody", {}, ...rows))));
      },
    };
  }

  /* --- the page ------------------------------------------------------------------------- */

  // The front page's panels, in order, below the start form: factories `(ctx) => panel`,
  // ctx = {openStart(planId)}.
  const PANELS = [watchersPanel, filterPanel, historyPanel, runsPanel];

  function frontPage(app) {
    const filters = readFilters();
    const start = startPanel();
    const ctx = { openStart: start.open };
    const panels = [start, ...PANELS.map((make) => make(ctx))];
    let timer = null;
    let stopped = false;
    const startButton = button({ id: "start-open", class: "chip" }, "▶ Start a plan", () => start.open());
    app.replaceChildren(el("header", { class: "top" }, el("h1", {}, "planrun ", startButton)),
      el("main", {}, ...panels.map((panel) => panel.node)));
    async function load() {
      const query = new URLSearchParams(filters).toString();
      let grid = null;
      let runs = null;
      try {
        [grid, runs] = await Promise.all([getJson(`/api/grid?${query}`), getJson("/api/runs")]);
      } catch (error) {
        panels.find((p) => p.id === "history").node.replaceChildren(el("p", { class: "empty" }, String(error)));
      }
      if (stopped) return;
      for (const panel of panels) panel.load(filters, grid, runs);
      timer = setTimeout(load, 2000);
    }
    load();
    return { stop() { stopped = true; clearTimeout(timer); } };
  }

  /* --- the run page's actions: cancel, resume, re-run the selected step ------------------- */

  /* `reopen()`: follow the run again (its event stream ended with it; a resume restarts it). */
  function runActions(runId, reopen) {
    const base = `/api/runs/${encodeURIComponent(runId)}`;
    const message = el("span", { id: "act-message", class: "muted", role: "status" });
    const bar = el("div", { class: "tabs" });
    const history = el("div", { id: "act-history", class: "muted" });
    const node = el("section", { id: "run-actions", class: "panel" }, bar, history);
    let cancels = 0;
    let step = null;
    let status = null;

    async function act(url, body, done) {
      message.textContent = "…";
      try {
        const answer = await postJson(url, body);
        message.textContent = answer.message || `${answer.action}: requested`;
        if (done) done(answer);
      } catch (error) {
        message.textContent = error.message;
      }
      render();
      loadHistory();
    }

    /* Who did what to this run from the UI (its ui_action events). */
    async function loadHistory() {
      try {
        const { actions } = await getJson(`${base}/actions`);
        history.replaceChildren(...actions.map((a) => el("div", { class: "ui-action", "data-action": a.action },
          `${a.action}${a.step ? ` ${a.step}` : ""} from ${a.remote || "?"} (${a.by || "planrun ui"}) at `
          + fmtTime(parseTs(a.ts)))));
      } catch (error) {
        history.textContent = String(error);
      }
    }

    function render() {
      const buttons = [];
      if (status === "running") {
        buttons.push(button({ id: "act-cancel" }, cancels ? "⊗ Stop now (kill running steps)" : "⊗ Cancel run",
          () => { cancels += 1; act(`${base}/cancel`); }));
      }
      if (["failed", "cancelled", "interrupted"].includes(status)) {
        buttons.push(button({ id: "act-resume" }, "↻ Resume run", () => act(`${base}/resume`, {}, reopen)));
      }
      if (step) {
        buttons.push(button({ id: "act-rerun", "data-step": step }, `⟳ Re-run ${step} only (new run)`,
          () => act(`${base}/steps/${encodeURIComponent(step)}/rerun`, {}, (answer) => {
            if (answer.run_id) location.hash = `#/runs/${encodeURIComponent(answer.run_id)}`;
          })));
      }
      bar.replaceChildren(...buttons, message);
    }

    return {
      node,
      update(data) {
        if (data.run.status !== status) { status = data.run.status; render(); loadHistory(); }
      },
      select(stepId) { step = stepId; render(); },
    };
  }

  return { PANELS, frontPage, runActions, getJson, postJson };
})();
