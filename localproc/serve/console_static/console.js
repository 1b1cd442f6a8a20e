// The localproc console: two views (#/ the jobs, #/job/NAME one job), drawn from the server's
// JSON with plain DOM calls and inline SVG. No framework, no build step, nothing fetched from
// elsewhere. Every text a job or a container produced is set with textContent, never as HTML.
"use strict";

const TOKEN = document.querySelector('meta[name="console-token"]').content;
const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 1500;
const ENDED = new Set(["Completed", "Failed", "Stopped"]);
let timer = null;
let view = null; // what the current view polls; replaced on every route change

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || response.statusText);
  return body;
}

function when(epoch) {
  return epoch ? new Date(epoch * 1000).toLocaleString() : "";
}

function seconds(total) {
  if (total === null || total === undefined) return "";
  const s = Math.max(0, Math.round(total));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}h ${m}m ${r}s` : m ? `${m}m ${r}s` : `${r}s`;
}

function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function duration(job) {
  if (!job.StartTime) return "";
  return seconds((job.EndTime || Date.now() / 1000) - job.StartTime);
}

function statusBadge(status) {
  return el("span", { class: `status status-${status}` }, status);
}

// -- the jobs page -------------------------------------------------------------------------------
function jobsQuery() {
  const form = document.getElementById("filters");
  const params = new URLSearchParams();
  const status = form.elements.status.value, name = form.elements.name.value.trim();
  if (status) params.set("status", status);
  if (name) params.set("name", name);
  for (const key of ["after", "before"]) {
    const value = form.elements[key].value;
    if (value) params.set(key, String(new Date(value).getTime() / 1000));
  }
  return params.toString();
}

async function refreshJobs() {
  const error = document.getElementById("jobs-error");
  let data;
  try {
    data = await getJson(`/console/api/jobs?${jobsQuery()}`);
    error.hidden = true;
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
    return true;
  }
  const body = document.querySelector("#jobs tbody");
  body.replaceChildren(...data.Jobs.map((job) => el("tr", { "data-job": job.Name },
    el("td", {}, el("a", { href: `#/job/${encodeURIComponent(job.Name)}` }, job.Name)),
    el("td", { class: "status-cell" }, statusBadge(job.Status)),
    el("td", {}, `${job.InstanceCount} × ${job.InstanceType}`),
    el("td", {}, when(job.CreationTime)),
    el("td", {}, duration(job)),
    el("td", {}, job.CostUsd === null ? "" : `$${job.CostUsd.toFixed(4)}`),
    el("td", { class: "reason" }, job.FailureReason || ""))));
  document.getElementById("jobs-empty").hidden = data.Jobs.length > 0;
  const unreadable = document.getElementById("jobs-unreadable");
  unreadable.textContent = data.Unreadable.length ? `Not listed, damaged: ${data.Unreadable.join("; ")}` : "";
  unreadable.hidden = !data.Unreadable.length;
  return true; // the list always keeps following: new jobs may appear any time
}

// -- the job page --------------------------------------------------------------------------------
function summary(page) {
  const d = page.Described, s = page.Summary;
  const rows = [
    ["ARN", d.ProcessingJobArn], ["Status", d.ProcessingJobStatus],
    ["Instances", `${s.InstanceCount} × ${s.InstanceType}`], ["Image", d.AppSpecification && d.AppSpecification.ImageUri],
    ["Created", when(s.CreationTime)], ["Started", when(s.StartTime)], ["Ended", when(s.EndTime)],
    ["Duration", duration(s)],
    ["Max runtime", d.StoppingCondition ? seconds(d.StoppingCondition.MaxRuntimeInSeconds) : ""],
    ["Est. SageMaker cost", s.CostUsd === null ? "" : `$${s.CostUsd.toFixed(6)} on demand`],
    ["Failure reason", d.FailureReason], ["Exit message", d.ExitMessage],
  ];
  document.getElementById("summary").replaceChildren(...rows.filter((r) => r[1]).flatMap(
    ([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function timeline(data) {
  const box = document.getElementById("timeline");
  if (!data.Start) { box.replaceChildren(el("p", { class: "muted" }, "No container has started yet.")); return; }
  const width = 900, label = 150, rowH = 28, top = 20;
  const span = Math.max(data.End - data.Start, 1);
  const x = (t) => label + ((t - data.Start) / span) * (width - label - 20);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${top + rowH * data.Instances.length + 24}`, class: "timeline" });
  data.Instances.forEach((inst, i) => {
    const y = top + i * rowH;
    const row = svg("g", { class: `instance-row outcome-${inst.Outcome}${inst.FailedFirst ? " failed-first" : ""}`,
      "data-host": inst.Host, "data-outcome": inst.Outcome });
    row.append(svg("text", { x: 4, y: y + 17, class: "row-label" },
      `${inst.Host} ${inst.FailedFirst ? "✖ failed first" : inst.Outcome === "Failed" ? "✖" : ""}`));
    for (const seg of inst.Segments) {
      const rect = svg("rect", { x: x(seg.Start), y: y + 4, width: Math.max(x(seg.End) - x(seg.Start), 2),
        height: rowH - 8, class: `segment phase-${seg.Phase}${seg.Open ? " open" : ""}` });
      rect.append(svg("title", {}, `${inst.Host} ${seg.Phase}: ${seconds(seg.End - seg.Start)}${seg.Open ? " (so far)" : ""}`));
      row.append(rect);
    }
    const ends = inst.Segments.filter((s) => s.Phase === "Running");
    if (ends.length && (inst.Outcome === "Failed" || inst.Outcome === "Stopped")) {
      row.append(svg("circle", { cx: x(ends[0].End), cy: y + rowH / 2, r: 5, class: `end-mark end-${inst.Outcome}` }));
    }
    chart.append(row);
  });
  const bottom = top + rowH * data.Instances.length;
  if (data.Deadline && !data.DeadlineInView) {
    chart.append(svg("text", { x: width - 20, y: top - 8, class: "deadline-label", "text-anchor": "end" },
      `MaxRuntimeInSeconds at +${seconds(data.Deadline - data.Start)} →`));
  } else if (data.Deadline) {
    chart.append(svg("line", { x1: x(data.Deadline), x2: x(data.Deadline), y1: top - 6, y2: bottom, class: "deadline" }));
    chart.append(svg("text", { x: x(data.Deadline) - 4, y: top - 8, class: "deadline-label", "text-anchor": "end" }, "MaxRuntimeInSeconds"));
  }
  chart.append(svg("text", { x: label, y: bottom + 16, class: "axis" }, when(data.Start)));
  chart.append(svg("text", { x: width - 20, y: bottom + 16, class: "axis", "text-anchor": "end" }, `+${seconds(span)}`));
  const legend = el("p", { class: "legend" }, ...["Staging", "Running", "Uploading"].map(
    (p) => el("span", { class: `key phase-${p}` }, p)),
    el("span", { class: "key outcome-Failed" }, "Failed"), el("span", { class: "key outcome-Stopped" }, "Stopped"));
  box.replaceChildren(chart, legend);
}

function lineChart(points, key, limit, held, format, title, cls) {
  const width = 420, height = 150, left = 60, bottom = 20;
  const values = points.map((p) => p[key]).filter((v) => v !== null);
  const top = Math.max(limit || 0, held || 0, ...values, 1) * 1.05;
  const t0 = points.length ? points[0].T : 0, t1 = points.length ? points[points.length - 1].T : 1;
  const x = (t) => left + ((t - t0) / Math.max(t1 - t0, 1)) * (width - left - 8);
  const y = (v) => height - bottom - (v / top) * (height - bottom - 8);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: `usage-chart ${cls}` });
  chart.append(svg("text", { x: left, y: 10, class: "chart-title" }, title));
  chart.append(svg("line", { x1: left, x2: left, y1: 8, y2: height - bottom, class: "axis-line" }));
  chart.append(svg("line", { x1: left, x2: width - 8, y1: height - bottom, y2: height - bottom, class: "axis-line" }));
  if (limit) {
    chart.append(svg("line", { x1: left, x2: width - 8, y1: y(limit), y2: y(limit), class: "limit" }));
    chart.append(svg("text", { x: width - 10, y: y(limit) - 3, class: "limit-label", "text-anchor": "end" }, `limit ${format(limit)}`));
  }
  if (held) {
    chart.append(svg("line", { x1: left, x2: width - 8, y1: y(held), y2: y(held), class: "container-limit" }));
    chart.append(svg("text", { x: left + 4, y: y(held) - 3, class: "container-limit-label" }, `held to ${format(held)} here`));
  }
  chart.append(svg("text", { x: left - 4, y: height - bottom, class: "axis", "text-anchor": "end" }, format(0)));
  chart.append(svg("text", { x: left - 4, y: 20, class: "axis", "text-anchor": "end" }, format(top)));
  const drawn = points.filter((p) => p[key] !== null);
  if (drawn.length) {
    chart.append(svg("polyline", { points: drawn.map((p) => `${x(p.T)},${y(p[key])}`).join(" "), class: "series" }));
  } else {
    chart.append(svg("text", { x: width / 2, y: height / 2, class: "muted", "text-anchor": "middle" }, "no samples"));
  }
  return chart;
}

function usage(data) {
  document.getElementById("usage-note").textContent =
    `Against ${data.InstanceType}: ${bytes(data.MemoryLimitBytes)} memory, ${data.CpuLimit ?? "?"} vCPUs` +
    (data.ContainerMemoryLimitBytes ? `; each container was held to ${bytes(data.ContainerMemoryLimitBytes)} and ${data.ContainerCpuLimit} CPUs on this host.` : ".");
  const box = document.getElementById("usage");
  box.replaceChildren(...Object.entries(data.Instances).map(([host, inst]) => el("div",
    { class: "usage-instance", "data-host": host },
    el("h3", {}, host),
    lineChart(inst.Points, "MemoryBytes", data.MemoryLimitBytes, data.ContainerMemoryLimitBytes, bytes, "memory", "memory"),
    lineChart(inst.Points, "Cpus", data.CpuLimit, data.ContainerCpuLimit, (v) => `${v.toFixed(1)}`, "CPUs busy", "cpu"),
    el("p", { class: "advice" }, inst.PeakMemoryBytes
      ? `peak ${bytes(inst.PeakMemoryBytes)}; smallest type that holds it: ${inst.SmallestFitting || "none of this family"}`
      : "no memory sample"))));
}

function inputs(rows) {
  const body = document.querySelector("#inputs tbody");
  body.replaceChildren(...rows.flatMap((inst) => inst.Inputs.map((item) => el("tr", {},
    el("td", {}, inst.Host), el("td", {}, item.InputName), el("td", {}, item.Mode),
    el("td", {}, item.ObjectCount), el("td", {}, bytes(item.Bytes)),
    el("td", { class: "objects" }, item.Objects.join("\n"))))));
}

function outputs(page) {
  const box = document.getElementById("outputs");
  box.replaceChildren(...page.Outputs.map((out) => el("div", { class: "output" },
    el("h3", {}, `${out.Host} · ${out.OutputName}`),
    el("p", { class: "muted" }, `uploaded to ${out.S3Uri} (${out.S3UploadMode})`),
    out.Files.length ? el("ul", {}, ...out.Files.map((file) => el("li", {},
      file.Kind === "file"
        ? el("a", { class: "download", download: file.Path.split("/").pop(), "data-host": out.Host,
          "data-output": out.OutputName, "data-path": file.Path,
          href: `/console/api/jobs/${encodeURIComponent(page.Described.ProcessingJobName)}/files/${encodeURIComponent(out.Host)}/${encodeURIComponent(out.OutputName)}/${file.Path.split("/").map(encodeURIComponent).join("/")}` }, file.Path)
        : el("span", { class: "link" }, `${file.Path} (a link: not served)`),
      file.Kind === "file" ? ` ${bytes(file.Bytes)}` : ""))) : el("p", { class: "muted" }, "no files"),
    out.Truncated ? el("p", { class: "muted" }, "(more files not listed)") : null)));
}

// Logs: each instance's file read on from where the last read ended; the merged view gets each
// new piece as it arrives, prefixed with its instance.
function startLogs(name, hosts) {
  const offsets = Object.fromEntries(hosts.map((h) => [h, 0]));
  const ended = new Set();
  const tabs = document.getElementById("log-tabs"), box = document.getElementById("logs");
  const panes = {};
  const show = (key) => {
    for (const [k, pane] of Object.entries(panes)) pane.hidden = k !== key;
    for (const b of tabs.children) b.classList.toggle("active", b.dataset.key === key);
  };
  for (const key of ["merged", ...hosts]) {
    panes[key] = el("pre", { id: `log-${key}`, class: "log" });
    tabs.append(el("button", { type: "button", "data-key": key }, key));
  }
  for (const b of tabs.children) b.addEventListener("click", () => show(b.dataset.key));
  box.replaceChildren(...Object.values(panes));
  show("merged");
  return async () => {
    for (const host of hosts) {
      if (ended.has(host)) continue;
      const piece = await getJson(`/console/api/jobs/${encodeURIComponent(name)}/logs/${encodeURIComponent(host)}?offset=${offsets[host]}`);
      offsets[host] = piece.Offset;
      if (piece.Text) {
        panes[host].append(piece.Text);
        const lines = piece.Text.replace(/\n$/, "").split("\n").map((line) => `${host} | ${line}\n`);
        panes.merged.append(lines.join(""));
      }
      if (piece.Ended) ended.add(host);
    }
    return ended.size < hosts.length;
  };
}

async function action(name, verb) {
  const message = document.getElementById("action-message");
  const response = await fetch(`/console/api/jobs/${encodeURIComponent(name)}/${verb}`,
    { method: "POST", headers: { "X-Localproc-Console-Token": TOKEN } });
  const body = await response.json();
  message.textContent = response.ok ? `${verb} requested` : body.message;
  if (response.ok && verb === "delete") location.hash = "#/";
}

async function jobView(name) {
  let logs = null;
  document.getElementById("stop-button").onclick = () => action(name, "stop");
  document.getElementById("delete-button").onclick = () => {
    if (confirm(`Delete ${name}: its record, logs and local outputs?`)) action(name, "delete");
  };
  document.getElementById("action-message").textContent = "";
  let drawnOnce = false, lastStatus = null;
  return async () => {
    let page;
    try {
      page = await getJson(`/console/api/jobs/${encodeURIComponent(name)}`);
      document.getElementById("job-error").hidden = true;
    } catch (err) {
      document.getElementById("job-error").textContent = err.message;
      document.getElementById("job-error").hidden = false;
      return !drawnOnce;
    }
    const status = page.Described.ProcessingJobStatus;
    document.getElementById("job-name").textContent = name;
    document.getElementById("job-status").replaceChildren(statusBadge(status));
    document.getElementById("stop-button").disabled = status !== "InProgress";
    document.getElementById("delete-button").disabled = !ENDED.has(status);
    summary(page);
    timeline(page.Timeline);
    usage(page.Usage);
    if (!drawnOnce || status !== lastStatus) {
      inputs(page.Inputs);
      outputs(page);
      document.getElementById("payload").textContent = JSON.stringify(page.Described, null, 2);
      document.getElementById("plan").textContent = page.Plan ? JSON.stringify(page.Plan, null, 2) : "(no plan recorded)";
    }
    if (!logs) logs = startLogs(name, page.Hosts);
    const logsGoOn = await logs();
    drawnOnce = true;
    lastStatus = status;
    return !ENDED.has(status) || logsGoOn;
  };
}

// -- routing and polling -------------------------------------------------------------------------
async function route() {
  clearTimeout(timer);
  const token = {};
  view = token;
  const match = location.hash.match(/^#\/job\/(.+)$/);
  document.getElementById("jobs-view").hidden = !!match;
  document.getElementById("job-view").hidden = !match;
  let step;
  if (match) {
    const name = decodeURIComponent(match[1]);
    document.getElementById("logs").replaceChildren();
    document.getElementById("log-tabs").replaceChildren();
    step = await jobView(name);
  } else {
    step = refreshJobs;
  }
  const poll = async () => {
    if (view !== token) return;
    let again = true;
    try { again = await step(); } catch (err) { again = true; }
    document.getElementById("live").hidden = !again;
    if (again && view === token) timer = setTimeout(poll, POLL_MS);
  };
  poll();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("filters").addEventListener("input", () => refreshJobs());
  window.addEventListener("hashchange", route);
  route();
});
