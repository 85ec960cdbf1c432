/* planrun views: draws one run snapshot (planrun.views.model.snapshot) as a summary, a status
   grid, a Gantt timeline of every attempt, the DAG and the failed steps' logs. Shared by the
   self-contained report and the web UI; plain DOM and SVG, no library, no network. */
"use strict";

const PlanViews = (() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  // The status symbols are planrun.views.style.SYMBOLS, embedded in the page by render_page.
  const SYMBOLS = JSON.parse(document.getElementById("status-symbols").textContent);
  const STATUS_ORDER = [
    "failed", "timed_out", "upstream_failed", "running", "retrying", "success", "skipped",
    "cancelled", "pending"];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    return fill(node, attrs, children);
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    return fill(node, attrs, children);
  }

  function fill(node, attrs, children) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "onclick") {
        node.addEventListener("click", value);
        // Keyboard users select with Enter like a click (tiles and rows are focusable).
        node.addEventListener("keydown", (event) => event.key === "Enter" && value(event));
      }
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /* Store timestamps are fixed-width UTC with microseconds: `2026-11-30T10:15:00.123456Z`. */
  function parseTs(text) {
    if (!text) return null;
    const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z$/.exec(text);
    if (!m) return Date.parse(text);
    const frac = m[7] ? Number("0." + m[7]) * 1000 : 0;
    return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) + frac;
  }

  function fmtDuration(sec) {
    if (sec === null || sec === undefined) return "";
    if (sec < 60) return sec.toFixed(1) + "s";
    const whole = Math.floor(sec);
    if (whole < 3600) return Math.floor(whole / 60) + "m" + String(whole % 60).padStart(2, "0") + "s";
    return Math.floor(whole / 3600) + "h" + String(Math.floor((whole % 3600) / 60)).padStart(2, "0") + "m";
  }

  function fmtTime(ms) {
    return ms === null ? "" : new Date(ms).toLocaleString();
  }

  function stepDuration(step, nowMs) {
    if (step.duration_sec !== null && step.duration_sec !== undefined) return step.duration_sec;
    if (step.status === "running" && step.started_at) return (nowMs - parseTs(step.started_at)) / 1000;
    return null;
  }

  /* A running step whose latest attempt has ended is waiting for its retry. */
  function statusOf(step) {
    return step.status === "running" && step.waiting ? "retrying" : step.status;
  }

  function markWaiting(data) {
    const open = new Set(data.attempts.filter((a) => !a.finished_at).map((a) => a.step_id));
    for (const step of data.steps) step.waiting = step.status === "running" && !open.has(step.step_id);
  }

  /* ---------------------------------------------------------------------------------------- */

  class RunView {
    /* opts: {onSelect(stepId), live: bool} */
    constructor(root, opts) {
      this.opts = opts || {};
      this.filter = new Set();
      this.search = "";
      this.expanded = new Set(); // the groups shown open (kept across live updates)
      this.selected = null;
      this.data = null;
      this.now = Date.now();
      root.replaceChildren();
      this.header = el("header", { class: "top" });
      this.nav = el("nav", { class: "sections" },
        el("a", { href: "#sec-grid" }, "Steps"), el("a", { href: "#sec-timeline" }, "Timeline"),
        el("a", { href: "#sec-dag" }, "Graph"), el("a", { href: "#sec-failed" }, "Failed steps"));
      this.gridSection = el("section", { id: "sec-grid" });
      this.extra = el("div", { id: "sec-extra" });
      this.timelineSection = el("section", { id: "sec-timeline" });
      this.dagSection = el("section", { id: "sec-dag" });
      this.failedSection = el("section", { id: "sec-failed" });
      const main = el("main", {}, this.gridSection, this.extra, this.timelineSection,
        this.dagSection, this.failedSection);
      root.append(this.header, this.nav, main);
      window.addEventListener("resize", () => this.data && this.renderTimeline());
    }

    update(data, nowMs) {
      markWaiting(data);
      this.data = data;
      this.now = nowMs;
      this.steps = new Map(data.steps.map((s) => [s.step_id, s]));
      this.groupOf = new Map();
      for (const group of data.groups || []) for (const id of group.members) this.groupOf.set(id, group);
      this.renderHeader();
      this.renderGrid();
      this.renderTimeline();
      this.renderDag();
      this.renderFailed();
    }

    tick(nowMs) {
      this.now = nowMs;
      if (this.data && this.data.run.status === "running") {
        this.renderTimeline();
        this.renderHeader();
      }
    }

    select(stepId) {
      this.selected = stepId;
      for (const node of document.querySelectorAll(".selected")) node.classList.remove("selected");
      for (const node of document.querySelectorAll(".selected-row")) node.classList.remove("selected-row");
      for (const node of document.querySelectorAll("svg .edge.hl")) node.classList.remove("hl");
      if (stepId === null) return;
      const group = this.groupOf && this.groupOf.get(stepId);
      if (group && !this.expanded.has(group.name)) this.toggleGroup(group.name);  // it was folded
      const key = CSS.escape(stepId);
      for (const node of document.querySelectorAll(`.tile[data-step="${key}"], .node[data-step="${key}"]`)) {
        node.classList.add("selected");
      }
      for (const node of document.querySelectorAll(`.row-bg[data-step="${key}"]`)) node.classList.add("selected-row");
      for (const node of document.querySelectorAll(`.edge[data-from="${key}"], .edge[data-to="${key}"]`)) {
        node.classList.add("hl");
      }
      if (this.opts.onSelect) this.opts.onSelect(stepId);
    }

    /* --- summary ------------------------------------------------------------------------- */

    renderHeader() {
      const { run, plan } = this.data;
      const duration = run.duration_sec !== null ? run.duration_sec
        : (this.now - parseTs(run.started_at)) / 1000;
      const title = el("h1", {}, `${plan.id || run.plan_id} `,
        el("span", { class: "run-id" }, run.run_id), " ",
        el("span", { class: `badge s-${run.status}`, id: "run-status" }, run.status));
      const counts = STATUS_ORDER.filter((s) => run.step_counts[s]).map((s) =>
        el("span", { class: `s-${s}` }, el("b", {}, `${SYMBOLS[s]} ${run.step_counts[s]}`), ` ${s}`));
      const stats = el("div", { class: "stats" },
        el("span", {}, "progress ", el("b", { id: "run-progress" }, `${run.done}/${run.total}`)),
        ...counts,
        el("span", {}, "started ", el("b", {}, fmtTime(parseTs(run.started_at)))),
        el("span", {}, run.status === "running" ? "running for " : "took ", el("b", {}, fmtDuration(duration)),
          // after a resume the duration is the last session's; the timeline spans the whole run
          run.span_sec > duration + 1 ? ` since the last resume, ${fmtDuration(run.span_sec)} from its start` : ""),
        run.exit_code !== null ? el("span", {}, "exit ", el("b", {}, run.exit_code)) : null,
        el("span", {}, "host ", el("b", {}, run.host)),
        el("span", {}, "concurrency ", el("b", {}, run.max_concurrency)));
      const description = plan.description ? el("div", { class: "muted" }, plan.description) : null;
      this.header.replaceChildren(...[title, description, stats, this.boundLine()].filter(Boolean));
    }

    /* The compile-time worst case (planrun.core.bound) next to what happened; its critical path is
       outlined on the timeline. */
    boundLine() {
      const bound = this.data.bound;
      if (!bound) return null;
      const worst = bound.unbounded_steps.length
        ? el("b", {}, `unbounded (${bound.unbounded_steps.slice(0, 3).join(", ")} without timeout)`)
        : el("b", {}, fmtDuration(bound.concurrency_bound_sec));
      return el("div", { class: "stats", id: "run-bound" },
        el("span", {}, "worst case ", worst),
        el("span", {}, "critical path ", el("b", {}, bound.critical_path.join(" → "))));
    }

    /* --- status grid --------------------------------------------------------------------- */

    renderGrid() {
      const steps = this.data.steps;
      const counts = {};
      for (const step of steps) counts[statusOf(step)] = (counts[statusOf(step)] || 0) + 1;
      const chips = STATUS_ORDER.filter((s) => counts[s]).map((s) => el("button", {
        class: `chip s-${s}`, "aria-pressed": this.filter.has(s) ? "true" : "false", "data-status": s,
        onclick: () => { this.filter.has(s) ? this.filter.delete(s) : this.filter.add(s); this.renderGrid(); },
      }, el("span", { class: "dot" }), `${s} ${counts[s]}`));
      const search = el("input", { type: "search", placeholder: "filter steps by id…", value: this.search,
        "aria-label": "filter steps" });
      search.addEventListener("input", () => { this.search = search.value; this.renderTiles(); });
      this.tiles = el("div", { class: "grid", id: "grid", role: "list" });
      this.gridSection.replaceChildren(el("h2", {}, `Steps (${steps.length})`),
        el("div", { class: "filters" }, ...chips, search), this.tiles);
      this.renderTiles();
    }

    /* A matrix's or a fan-out's instances are one group row (counts per status) that opens to
       their tiles; the row stands where its first instance would. */
    renderTiles() {
      const fragment = document.createDocumentFragment();
      const needle = this.search.toLowerCase();
      const drawn = new Set();
      for (const step of this.data.steps) {
        const group = this.groupOf.get(step.step_id);
        if (!group) {
          if (this.shows(step, needle)) fragment.append(this.tile(step));
        } else if (!drawn.has(group.name)) {
          drawn.add(group.name);
          const row = this.groupRow(group, needle);
          if (row) fragment.append(row);
        }
      }
      this.tiles.replaceChildren(fragment);
      if (!this.tiles.childElementCount) this.tiles.append(el("div", { class: "empty" }, "no step matches"));
    }

    /* Open or fold a group in the grid and on the timeline alike. */
    toggleGroup(name) {
      if (this.expanded.has(name)) this.expanded.delete(name); else this.expanded.add(name);
      this.renderTiles();
      this.renderTimeline();
    }

    shows(step, needle) {
      if (this.filter.size && !this.filter.has(statusOf(step))) return false;
      return !needle || step.step_id.toLowerCase().includes(needle);
    }

    groupRow(group, needle) {
      const members = group.members.map((id) => this.steps.get(id)).filter(Boolean);
      // A search for the group's name shows all of it.
      const query = group.name.toLowerCase().includes(needle) ? "" : needle;
      const shown = members.filter((step) => this.shows(step, query));
      if (!shown.length) return null;
      const counts = {};
      for (const step of members) counts[statusOf(step)] = (counts[statusOf(step)] || 0) + 1;
      const present = STATUS_ORDER.filter((s) => counts[s]);
      const open = this.expanded.has(group.name);
      const toggle = () => this.toggleGroup(group.name);
      const what = `${members.length} ${group.kind === "matrix" ? "matrix instances" : "instances"}`;
      const summary = present.map((s) => `${counts[s]} ${s}`).join(", ");
      const head = el("div", {
        class: `group-head s-${present[0] || "pending"}`, role: "button", tabindex: 0,
        "aria-expanded": open ? "true" : "false", "aria-label": `${group.name}: ${what}, ${summary}`,
        onclick: toggle,
      }, el("span", { class: "fold" }, open ? "▾" : "▸"), el("span", { class: "id" }, group.name),
      el("span", { class: "muted" }, what),
      ...present.map((s) => el("span", { class: `count s-${s}`, "data-status": s, title: s },
        `${SYMBOLS[s] || "?"} ${counts[s]}`)));
      const body = open ? el("div", { class: "grid members", role: "list" }, ...shown.map((s) => this.tile(s))) : null;
      return el("div", { class: "group", role: "listitem", "data-group": group.name, "data-kind": group.kind },
        head, body);
    }

    tile(step) {
      const status = statusOf(step);
      const duration = stepDuration(step, this.now);
      const label = [`${step.step_id}: ${status}`];
      if (step.attempts > 1) label.push(`${step.attempts} attempts`);
      if (step.exit_code !== null) label.push(`exit ${step.exit_code}`);
      if (step.reason) label.push(step.reason);
      if (step.tolerated) label.push(`tolerated (${step.tolerated})`);
      else if (step.recovered_by) label.push(`recovered by ${step.recovered_by}`);
      return el("div", {
        class: `tile s-${status}${step.step_id === this.selected ? " selected" : ""}`,
        role: "listitem", tabindex: 0, "data-step": step.step_id, "data-status": status,
        title: `${label.join(" · ")}\n${step.command}`, "aria-label": label.join(", "),
        onclick: () => this.select(step.step_id),
      }, el("span", { class: "sym" }, SYMBOLS[status] || "?"), el("span", { class: "id" }, step.step_id),
      el("span", { class: "dur" }, (step.attempts > 1 ? `×${step.attempts} ` : "") + fmtDuration(duration)));
    }

    /* --- timeline (Gantt) ---------------------------------------------------------------- */

    renderTimeline() {
      const { run } = this.data;
      // One row per step; a folded group's instances share one row (`each[*]`), bars and all.
      const byRow = new Map();
      for (const a of this.data.attempts) {
        const group = this.groupOf.get(a.step_id);
        const folded = group && !this.expanded.has(group.name) ? group : null;
        const key = folded ? `[*]${folded.name}` : a.step_id;
        if (!byRow.has(key)) byRow.set(key, { stepId: folded ? null : a.step_id, group: folded, attempts: [] });
        byRow.get(key).attempts.push(a);
      }
      const first = (row) => Math.min(...row.attempts.map((a) => parseTs(a.started_at)));
      const rows = [...byRow.values()].sort((x, y) => first(x) - first(y) ||
        this.steps.get(x.attempts[0].step_id).ordinal - this.steps.get(y.attempts[0].step_id).ordinal);
      const t0 = parseTs(run.started_at);
      let t1 = run.finished_at ? parseTs(run.finished_at) : this.now;
      for (const a of this.data.attempts) t1 = Math.max(t1, a.finished_at ? parseTs(a.finished_at) : this.now);
      const span = Math.max(t1 - t0, 100);
      const labelW = 200;
      const width = Math.max((this.timelineSection.clientWidth || 900) - 4, 700);
      const chartW = width - labelW - 20;
      const rowH = rows.length > 200 ? 13 : 20;
      const top = 22;
      const height = top + rows.length * rowH + 8;
      const x = (ms) => labelW + ((ms - t0) / span) * chartW;
      const chart = svg("svg", { width, height, id: "timeline", role: "img",
        "aria-label": `timeline of ${this.data.attempts.length} attempts` });
      const axis = svg("g", { class: "axis" });
      const tick = niceTick(span / 1000);
      for (let i = 0; i * tick * 1000 <= span; i++) {
        const sec = i * tick;
        const px = x(t0 + sec * 1000);
        axis.append(svg("line", { x1: px, x2: px, y1: top - 4, y2: height }),
          svg("text", { x: px + 2, y: top - 8 }, fmtDuration(sec).replace(".0s", "s")));
      }
      chart.append(axis);
      const bars = svg("g", { class: "bars" });
      this.criticalSteps = new Set(this.data.bound ? this.data.bound.critical_path : []);
      rows.forEach(({ stepId, group, attempts }, i) => {
        const y = top + i * rowH;
        const rowClass = `row-bg${i % 2 ? " odd" : ""}${stepId !== null && stepId === this.selected ? " selected-row" : ""}`;
        const key = group ? { "data-group": group.name } : { "data-step": stepId };
        bars.append(svg("rect", { class: rowClass, x: 0, y, width, height: rowH, ...key }));
        bars.append(svg("text", { class: "row-label", x: 4, y: y + rowH - 5, ...key,
          onclick: () => group ? this.toggleGroup(group.name) : this.select(stepId) },
        group ? `▸ ${clip(group.name, 26)}[*]` : clip(stepId, 30)));
        for (const a of attempts) {
          const start = parseTs(a.started_at);
          const end = a.finished_at ? parseTs(a.finished_at) : this.now;
          const status = a.status;
          const critical = this.criticalSteps.has(a.step_id) ? " critical" : "";
          const bar = svg("rect", {
            class: `bar s-${status}${critical}`, x: x(start), y: y + 2, height: rowH - 4, rx: 2,
            width: Math.max(2, x(end) - x(start)), "data-step": a.step_id, "data-attempt": a.attempt,
            "data-status": status, onclick: () => this.select(a.step_id),
          }, svg("title", {}, `${a.step_id} · attempt ${a.attempt} · ${status}` +
            ` · ${fmtDuration(a.duration_sec !== null ? a.duration_sec : (end - start) / 1000)}` +
            (a.reason ? ` · ${a.reason}` : "")));
          bars.append(bar);
        }
      });
      chart.append(bars);
      const scroller = el("div", { class: "scroll tall" }, chart);
      const note = rows.length ? null : el("div", { class: "empty" }, "no attempt has started yet");
      this.timelineSection.replaceChildren(
        el("h2", {}, `Timeline (${this.data.attempts.length} attempts)`), note || scroller);
    }

    /* --- graph --------------------------------------------------------------------------- */

    renderDag() {
      const { dag } = this.data;
      const W = 168, H = 24, GX = 64, GY = 8, PAD = 10;
      const pos = (id) => {
        const [col, row] = dag.nodes[id];
        return [PAD + col * (W + GX), PAD + (row + (dag.rows - dag.sizes[col]) / 2) * (H + GY)];
      };
      const width = PAD * 2 + dag.layers * (W + GX) - GX;
      const height = PAD * 2 + dag.rows * (H + GY) - GY;
      const chart = svg("svg", { width, height, id: "dag", role: "img",
        "aria-label": `dependency graph of ${this.data.steps.length} steps` });
      // A fan-out's instances, made at run time, have no node: their fan-out step stands for them.
      const drawn = this.data.steps.filter((step) => dag.nodes[step.step_id]);
      const edges = svg("g", {});
      for (const step of drawn) {
        const [x2, y2] = pos(step.step_id);
        for (const dep of step.depends_on) {
          const [x1, y1] = pos(dep);
          const a = [x1 + W, y1 + H / 2], b = [x2, y2 + H / 2];
          const bend = Math.max(24, (b[0] - a[0]) / 2);
          edges.append(svg("path", { class: "edge", "data-from": dep, "data-to": step.step_id,
            d: `M${a[0]},${a[1]} C${a[0] + bend},${a[1]} ${b[0] - bend},${b[1]} ${b[0]},${b[1]}` }));
        }
      }
      const nodes = svg("g", {});
      for (const step of drawn) {
        const [px, py] = pos(step.step_id);
        const status = statusOf(step);
        nodes.append(svg("g", {
          class: `node s-${status}${step.step_id === this.selected ? " selected" : ""}`,
          transform: `translate(${px},${py})`, "data-step": step.step_id, "data-status": status,
          onclick: () => this.select(step.step_id),
        }, svg("title", {}, `${step.step_id}: ${status}`),
        svg("rect", { width: W, height: H, rx: 4 }),
        svg("text", { x: 7, y: 16 }, `${SYMBOLS[status] || "?"} ${clip(step.step_id, 22)}`)));
      }
      chart.append(edges, nodes);
      this.dagSection.replaceChildren(el("h2", {}, "Graph"), el("div", { class: "scroll tall" }, chart));
    }

    /* --- failed steps' logs -------------------------------------------------------------- */

    renderFailed() {
      const logs = this.data.logs || {};
      const failed = this.data.steps.filter((s) => s.status === "failed" || s.status === "timed_out");
      const items = failed.map((step) => {
        const log = logs[step.step_id] || {};
        const exit = step.exit_code !== null && !(step.reason || "").startsWith("exit code")
          ? `exit ${step.exit_code}` : null;
        const what = [step.reason, exit,
          `attempt ${log.attempt || step.attempts} of ${step.attempts}`].filter(Boolean).join(" · ");
        const parts = [el("h3", {}, `${SYMBOLS[step.status]} ${step.step_id} `,
          el("span", { class: "muted" }, what))];
        if (step.tolerated) parts.push(el("div", { class: "muted tolerated" },
          `tolerated: the run went on (${step.tolerated})`));
        else if (step.recovered_by) parts.push(el("div", { class: "muted" }, `recovered by ${step.recovered_by}`));
        if (log.omitted) parts.push(el("div", { class: "empty" },
          `log omitted (report size limit): planrun logs ${this.data.run.run_id} ${step.step_id} --stderr`));
        for (const stream of ["stderr", "stdout"]) {
          if (!log[stream]) continue;
          const cut = log[`${stream}_cut`] ? " (last lines)" : "";
          parts.push(el("div", { class: "muted" }, stream + cut),
            el("pre", { class: `log ${stream}`, "data-stream": stream }, log[stream]));
        }
        if (!log.omitted && !log.stderr && !log.stdout) parts.push(el("div", { class: "empty" }, "no output"));
        parts.push(el("div", { class: "muted full-log" },
          `full log: planrun logs ${this.data.run.run_id} ${step.step_id} [--stderr]`));
        return el("article", { class: `failed-log s-${step.status}`, "data-step": step.step_id,
          id: `failed-${step.step_id}` }, ...parts);
      });
      const body = items.length ? items : [el("div", { class: "empty" }, "no step failed")];
      this.failedSection.replaceChildren(el("h2", {}, `Failed steps (${failed.length})`), ...body);
    }
  }

  function niceTick(spanSec) {
    const steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
      14400, 43200, 86400];
    for (const s of steps) if (spanSec / s <= 12) return s;
    return Math.ceil(spanSec / 12 / 86400) * 86400;
  }

  function clip(text, n) {
    return text.length > n ? text.slice(0, n - 1) + "…" : text;
  }

  return { RunView, el, svg, parseTs, fmtDuration, fmtTime, SYMBOLS };
})();
