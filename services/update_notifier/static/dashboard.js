// Planner backbone dashboard: plain JavaScript, no build step, no dependencies.
//
// Data: GET /api/dashboard/projects (and /projects/{id}) for counts and system posts,
// GET /api/dashboard/timeline for the update log with its steps. Live: the notifier's SSE
// stream (GET /api/updates/stream, `update` events carry projectId + cursor); if it keeps
// failing, cursor polling of POST /api/getUpdates, retrying the stream now and then.
// A project's blue dot means "updated since you last opened it" (kept in localStorage).
"use strict";

(() => {
  const TOKEN_KEY = "planner.dashboard.token";
  const SEEN_KEY = "planner.dashboard.seen";
  const SSE_ERRORS_BEFORE_POLLING = 3;
  const POLL_SECONDS = 3;
  const POLL_MAX_SECONDS = 30;
  const STREAM_RETRY_SECONDS = 30;
  const STATUS_LABELS = {
    pending_publication: "pending",
    publishing: "publishing",
    error: "error",
    possible_error: "possible error",
  };
  const MODE_TEXT = {
    connecting: "Connecting…",
    live: "Live: update stream connected",
    polling: "Polling: stream unavailable, asking getUpdates every 3 s",
    offline: "Offline: retrying…",
  };

  const params = new URLSearchParams(window.location.search);
  const timelineSize = clamp(parseInt(params.get("events") || "30", 10) || 30, 5, 200);
  const token = takeToken();
  const $ = (id) => document.getElementById(id);

  const state = {
    projects: new Map(), // id -> {data, element, lastSeq, loading, dirty, dueTimer}
    open: null,
    initialized: false,
    sandbox: false,
    statuses: Object.keys(STATUS_LABELS),
    mode: null,
    cursor: null, // position in the update log this page has followed up to
    loadedSeq: 0, // updates up to here were there before the page loaded
    source: null,
    sseErrors: 0,
    polling: false,
    pollTimer: null,
    pollFailures: 0,
    streamRetryTimer: null,
    arrivals: [], // [{lo, hi, at}]: when updates with seq in [lo, hi] reached this page
    timelineSeq: 0,
    timelineLoading: false,
    timelineDirty: false,
    listLoading: null,
  };
  const seen = loadSeen();
  let detailsCounter = 0;

  // --- small helpers -------------------------------------------------------------------------

  function clamp(value, low, high) { return Math.max(low, Math.min(high, value)); }

  function takeToken() {
    const fromUrl = params.get("access_token");
    if (fromUrl) {
      try { sessionStorage.setItem(TOKEN_KEY, fromUrl); } catch (_) { /* private mode */ }
      params.delete("access_token");
      const rest = params.toString();
      window.history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
      return fromUrl;
    }
    try { return sessionStorage.getItem(TOKEN_KEY); } catch (_) { return null; }
  }

  function loadSeen() {
    try { return JSON.parse(localStorage.getItem(SEEN_KEY) || "{}") || {}; } catch (_) { return {}; }
  }

  function saveSeen() {
    try { localStorage.setItem(SEEN_KEY, JSON.stringify(seen)); } catch (_) { /* ignore */ }
  }

  function seqOf(cursor) {
    const match = /^v1\.(\d+)$/.exec(cursor || "");
    return match ? parseInt(match[1], 10) : 0;
  }

  function pad(number, width) { return String(number).padStart(width, "0"); }

  function clock(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    return `${pad(date.getHours(), 2)}:${pad(date.getMinutes(), 2)}:${pad(date.getSeconds(), 2)}` +
      `.${pad(date.getMilliseconds(), 3)}`;
  }

  function dateTime(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    return `${date.getFullYear()}-${pad(date.getMonth() + 1, 2)}-${pad(date.getDate(), 2)} ` +
      `${pad(date.getHours(), 2)}:${pad(date.getMinutes(), 2)}:${pad(date.getSeconds(), 2)}`;
  }

  function duration(ms) {
    if (!Number.isFinite(ms)) return "";
    const sign = ms < 0 ? "−" : "+";
    const size = Math.abs(ms);
    if (size < 1000) return `${sign}${Math.round(size)} ms`;
    if (size < 60000) return `${sign}${(size / 1000).toFixed(2)} s`;
    return `${sign}${Math.round(size / 60000)} min`;
  }

  function relative(iso) {
    const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
    if (seconds > 0 && seconds < 3600) return `in ${seconds} s`;
    if (seconds <= 0 && seconds > -3600) return `${-seconds} s ago`;
    return "";
  }

  function element(tag, options = {}, children = []) {
    const node = document.createElement(tag);
    if (options.className) node.className = options.className;
    if (options.text !== undefined) node.textContent = options.text;
    for (const [name, value] of Object.entries(options.attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  async function api(path, options = {}) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    const init = { method: options.method || "GET", headers, cache: "no-store" };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    const response = await fetch(path, init);
    let payload = null;
    try { payload = await response.json(); } catch (_) { payload = null; }
    if (!response.ok) {
      const error = new Error((payload && payload.error) || `HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return payload;
  }

  function notice(text) {
    const box = $("notice");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function setMode(mode) {
    if (state.mode === mode) return;
    state.mode = mode;
    const box = $("connection");
    box.dataset.state = mode;
    $("connection-text").textContent = MODE_TEXT[mode];
  }

  function failed(error) {
    if (error && error.status === 401) {
      notice("This notifier requires an access token: open the page as /?access_token=<NOTIFIER_TOKEN>.");
    } else {
      notice(`Request failed: ${error && error.message ? error.message : error}`);
    }
  }

  // --- projects ------------------------------------------------------------------------------

  async function loadProjects() {
    const answer = await api("/api/dashboard/projects");
    state.sandbox = Boolean(answer.sandbox);
    if (Array.isArray(answer.statuses)) state.statuses = answer.statuses;
    $("sandbox-hint").hidden = !state.sandbox;
    const ids = new Set(answer.projects.map((project) => project.id));
    for (const id of [...state.projects.keys()]) if (!ids.has(id)) removeProject(id);
    for (const data of answer.projects) applyProject(data);
    $("projects-empty").hidden = answer.projects.length > 0;
    return answer;
  }

  function reloadProjects() {
    if (!state.listLoading) {
      state.listLoading = loadProjects().catch(failed).finally(() => { state.listLoading = null; });
    }
    return state.listLoading;
  }

  function removeProject(id) {
    const project = state.projects.get(id);
    if (!project) return;
    clearTimeout(project.dueTimer);
    project.element.remove();
    state.projects.delete(id);
    if (state.open === id) state.open = null;
  }

  function createProject(data) {
    const fragment = $("project-template").content.cloneNode(true);
    const item = fragment.querySelector(".project");
    item.dataset.projectId = data.id;
    const detailsId = `project-details-${++detailsCounter}`;
    item.querySelector(".details").id = detailsId;
    item.querySelector(".project-open").setAttribute("aria-controls", detailsId);
    const project = { data, element: item, lastSeq: 0, loading: false, dirty: false, dueTimer: null };
    item.querySelector(".project-open").addEventListener("click", () => toggleOpen(data.id));
    for (const button of item.querySelectorAll(".sandbox button")) {
      button.addEventListener("click", () => sandboxAction(data.id, button));
    }
    insertSorted(item, data.id);
    state.projects.set(data.id, project);
    if (!(data.id in seen)) {
      // Known when the page loaded: nothing is new yet. Appeared later: all of it is.
      seen[data.id] = state.initialized ? 0 : (data.lastUpdate ? data.lastUpdate.seq : 0);
      saveSeen();
    }
    return project;
  }

  function insertSorted(item, id) {
    const list = $("projects");
    const after = [...list.children].find((child) => child.dataset.projectId > id);
    list.insertBefore(item, after || null);
  }

  function applyProject(data) {
    const project = state.projects.get(data.id) || createProject(data);
    project.data = data;
    if (data.lastUpdate && data.lastUpdate.seq > project.lastSeq) project.lastSeq = data.lastUpdate.seq;
    if (state.open === data.id) markSeen(project);
    renderProject(project);
    scheduleDueRefresh(project);
  }

  function renderProject(project) {
    const { data, element: item } = project;
    const name = data.name || data.id;
    item.querySelector(".project-name").textContent = name;
    item.querySelector(".project-group").textContent =
      data.vkGroupId ? `VK community ${data.vkGroupId} · ${data.id}` : data.id;
    for (const node of item.querySelectorAll("[data-count]")) {
      node.textContent = String(data.counts[node.dataset.count] ?? 0);
    }
    renderStatusCounts(item.querySelector(".status-counts"), data.systemPosts.counts);
    renderSystemPosts(item, name, data.systemPosts);
    renderRefreshStatus(item.querySelector(".refresh-status"), data.refreshStatus || {}, data);
    const sandbox = item.querySelector(".sandbox");
    sandbox.hidden = !state.sandbox;
    item.querySelector('[data-action="scheduled-post"]')
      .setAttribute("aria-label", `Create a scheduled post in the sandbox community of ${name}`);
    item.querySelector('[data-action="system-post"]')
      .setAttribute("aria-label", `Create a system post due in 10 seconds for ${name}`);
    renderDot(project);
  }

  function renderStatusCounts(list, counts) {
    list.replaceChildren(...state.statuses.map((status) => {
      const count = counts[status] || 0;
      return element("li", { attrs: { "data-status-count": status } }, [
        element("span", {
          className: `badge ${count ? status : "zero"}`,
          text: `${STATUS_LABELS[status] || status}: ${count}`,
        }),
      ]);
    }));
  }

  function renderSystemPosts(item, name, systemPosts) {
    item.querySelector(".system-posts caption").textContent = `System posts of ${name}`;
    const body = item.querySelector(".system-posts tbody");
    const rows = systemPosts.posts.map((post) => {
      const extra = [];
      if (post.vkPostId) extra.push(`wall post ${post.vkPostId}`);
      if (post.status === "publishing") extra.push(post.vkPostId ? "published, verifying" : "claimed, sending");
      if (post.error) extra.push(post.error);
      else if (post.lastError) extra.push(`last error: ${post.lastError}`);
      if (post.attempts) extra.push(`${post.attempts} failed attempt(s)`);
      const due = element("span", {
        className: "extra", text: relative(post.publicationDate),
        attrs: { "data-due": post.publicationDate, "aria-hidden": "true" },
      });
      return element("tr", { attrs: { "data-post-id": post.id, "data-status": post.status } }, [
        element("td", {}, [element("span", {
          className: `badge ${post.status}`, text: STATUS_LABELS[post.status] || post.status,
        })]),
        element("td", {}, [
          element("time", { text: dateTime(post.publicationDate), attrs: { datetime: post.publicationDate } }),
          due,
        ]),
        element("td", { className: "text" }, [
          document.createTextNode(post.text || "(no text)"),
          extra.length ? element("span", { className: "extra", text: extra.join(" · ") }) : null,
        ]),
      ]);
    });
    if (systemPosts.total > systemPosts.posts.length) {
      rows.push(element("tr", { className: "empty" }, [element("td", {
        text: `… and ${systemPosts.total - systemPosts.posts.length} more`, attrs: { colspan: 3 },
      })]));
    }
    if (!rows.length) {
      rows.push(element("tr", { className: "empty" }, [
        element("td", { text: "No system posts.", attrs: { colspan: 3 } }),
      ]));
    }
    body.replaceChildren(...rows);
  }

  function renderRefreshStatus(list, statuses, data) {
    const items = Object.entries(statuses).map(([content, status]) => element("li", {}, [
      element("span", { className: status.ok ? "ok" : "failed", text: status.ok ? "✓ " : "✗ " }),
      document.createTextNode(`${content}: ${status.ok ? "ok" : status.error || "failed"} at ${clock(status.at)}`),
    ]));
    if (!items.length) items.push(element("li", { text: "No refresh yet." }));
    const rest = data.tokenRest;
    if (rest) {
      items.push(element("li", { className: "token-rest", attrs: { "data-token-rest": "" } }, [
        element("span", { className: "failed", text: "⏸ " }),
        document.createTextNode(`VK token refused (error ${rest.code ?? "?"}) since ${clock(rest.since)}: ` +
          `VK calls paused, next probe at ${clock(rest.probeAt)} or when the token changes`),
      ]));
    }
    items.push(element("li", {
      className: "reconciled", attrs: { "data-reconciled": data.lastReconciledAt || "" },
      text: data.lastReconciledAt ? `Last reconciled at ${clock(data.lastReconciledAt)}` : "Not reconciled yet",
    }));
    list.replaceChildren(...items);
  }

  function renderDot(project) {
    const unseen = project.lastSeq > (seen[project.data.id] || 0);
    project.element.querySelector(".dot").hidden = !unseen;
    project.element.classList.toggle("has-updates", unseen);
  }

  function markSeen(project) {
    if ((seen[project.data.id] || 0) < project.lastSeq) {
      seen[project.data.id] = project.lastSeq;
      saveSeen();
    }
  }

  function toggleOpen(id) {
    const opening = state.open !== id;
    for (const [otherId, other] of state.projects) {
      const isOpen = opening && otherId === id;
      other.element.classList.toggle("open", isOpen);
      other.element.querySelector(".project-open").setAttribute("aria-expanded", String(isOpen));
      other.element.querySelector(".details").hidden = !isOpen;
    }
    state.open = opening ? id : null;
    const project = state.projects.get(id);
    if (opening && project) {
      markSeen(project);
      renderDot(project);
      refreshProject(id);
    }
  }

  async function refreshProject(id) {
    const project = state.projects.get(id);
    if (!project) return;
    if (project.loading) { project.dirty = true; return; }
    project.loading = true;
    try {
      do {
        project.dirty = false;
        const answer = await api(`/api/dashboard/projects/${encodeURIComponent(id)}`);
        applyProject(answer.project);
      } while (project.dirty);
    } catch (error) {
      if (error.status === 404) removeProject(id); else failed(error);
    } finally {
      project.loading = false;
    }
  }

  // A pending post changes when it falls due (the tracker does not announce the claim):
  // look once shortly after that moment. A single timer per project, not polling.
  function scheduleDueRefresh(project) {
    clearTimeout(project.dueTimer);
    const now = Date.now();
    const next = project.data.systemPosts.posts
      .filter((post) => post.status === "pending_publication")
      .map((post) => new Date(post.publicationDate).getTime())
      .filter((time) => time > now && time - now < 3600 * 1000)
      .sort((a, b) => a - b)[0];
    if (next !== undefined) {
      project.dueTimer = setTimeout(() => refreshProject(project.data.id), next - now + 1500);
    }
  }

  async function sandboxAction(id, button) {
    const project = state.projects.get(id);
    if (!project) return;
    const output = project.element.querySelector(".sandbox-result");
    const action = button.dataset.action;
    button.disabled = true;
    try {
      if (action === "scheduled-post") {
        const answer = await api("/api/dashboard/sandbox/scheduled-post", { method: "POST", body: { project_id: id } });
        output.textContent = `Scheduled post ${answer.post.id} created in the sandbox ` +
          `(for ${dateTime(answer.post.publishDate)}); waiting for VK's callback to come back…`;
      } else {
        const answer = await api("/api/dashboard/sandbox/system-post", {
          method: "POST", body: { project_id: id, delay_seconds: 10 },
        });
        output.textContent = `System post created, due at ${clock(answer.post.publicationDate)}.`;
        await refreshProject(id);
      }
    } catch (error) {
      output.textContent = `Failed: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  // --- updates -------------------------------------------------------------------------------

  function noteArrival(lo, hi) {
    if (hi < lo) return;
    state.arrivals.push({ lo, hi, at: Date.now() });
    if (state.arrivals.length > 500) state.arrivals.splice(0, state.arrivals.length - 500);
  }

  function arrivalOf(seq) {
    const hit = state.arrivals.find((arrival) => arrival.lo <= seq && seq <= arrival.hi);
    return hit ? hit.at : null;
  }

  function projectUpdated(id, seq) {
    const project = state.projects.get(id);
    if (!project) { reloadProjects(); return; }
    if (seq && seq > project.lastSeq) project.lastSeq = seq;
    if (state.open === id) markSeen(project);
    renderDot(project);
    refreshProject(id);
  }

  function onUpdate(data) {
    state.cursor = data.cursor;
    const seq = seqOf(data.cursor);
    noteArrival(seq, seq);
    projectUpdated(data.projectId, seq);
    refreshTimeline();
  }

  async function resync(cursor) {
    // The log no longer reaches back to our position: reload everything, follow from here.
    state.cursor = cursor;
    state.loadedSeq = seqOf(cursor);
    await reloadProjects();
    for (const id of state.projects.keys()) refreshProject(id);
    await loadTimeline();
  }

  function openStream(probe) {
    closeStream();
    const query = new URLSearchParams();
    if (state.cursor) query.set("cursor", state.cursor);
    if (token) query.set("access_token", token);
    const source = new EventSource(`/api/updates/stream?${query}`);
    state.source = source;
    source.addEventListener("open", () => {
      if (state.source !== source) return;
      state.sseErrors = 0;
      stopPolling();
      setMode("live");
    });
    source.addEventListener("ready", (event) => {
      state.cursor = JSON.parse(event.data).cursor;
    });
    source.addEventListener("update", (event) => onUpdate(JSON.parse(event.data)));
    source.addEventListener("resync", (event) => resync(JSON.parse(event.data).cursor));
    source.addEventListener("error", () => {
      if (state.source !== source) return;
      state.sseErrors += 1;
      if (probe || state.polling) { closeStream(); return; } // still polling; try again later
      if (source.readyState === EventSource.CLOSED || state.sseErrors >= SSE_ERRORS_BEFORE_POLLING) {
        closeStream();
        startPolling();
      } else {
        setMode("offline"); // EventSource reconnects by itself, resuming at the last id
      }
    });
  }

  function closeStream() {
    if (state.source) {
      state.source.close();
      state.source = null;
    }
  }

  function startPolling() {
    if (state.polling) return;
    state.polling = true;
    state.pollFailures = 0;
    setMode("polling");
    schedulePoll(0);
    state.streamRetryTimer = setInterval(() => {
      if (state.polling && !state.source) openStream(true);
    }, STREAM_RETRY_SECONDS * 1000);
  }

  function stopPolling() {
    state.polling = false;
    clearTimeout(state.pollTimer);
    clearInterval(state.streamRetryTimer);
    state.pollTimer = null;
  }

  function schedulePoll(seconds) {
    clearTimeout(state.pollTimer);
    state.pollTimer = setTimeout(poll, seconds * 1000);
  }

  async function poll() {
    if (!state.polling) return;
    try {
      if (!state.cursor) {
        const start = await api("/api/getUpdates", { method: "POST", body: { cursor: null } });
        if (!state.polling) return;
        await resync(start.cursor);
      }
      const before = state.cursor;
      const answer = await api("/api/getUpdates", { method: "POST", body: { cursor: before } });
      if (!state.polling || state.cursor !== before) return; // the stream took over meanwhile
      state.pollFailures = 0;
      setMode("polling");
      if (answer.resync) {
        await resync(answer.cursor);
      } else {
        state.cursor = answer.cursor;
        if (answer.updatedProjectIds.length) {
          noteArrival(seqOf(before) + 1, seqOf(answer.cursor));
          for (const id of answer.updatedProjectIds) projectUpdated(id, null);
          refreshTimeline();
        }
      }
      schedulePoll(POLL_SECONDS);
    } catch (error) {
      if (!state.polling) return;
      state.pollFailures += 1;
      if (error.status === 400) state.cursor = null; // not a cursor of this log: start over
      if (error.status === 401) failed(error);
      setMode("offline");
      schedulePoll(Math.min(POLL_MAX_SECONDS, POLL_SECONDS * 2 ** state.pollFailures));
    }
  }

  // --- timeline ------------------------------------------------------------------------------

  async function loadTimeline() {
    state.timelineSeq = 0;
    $("timeline").replaceChildren();
    await refreshTimeline();
  }

  async function refreshTimeline() {
    if (state.timelineLoading) { state.timelineDirty = true; return; }
    state.timelineLoading = true;
    try {
      do {
        state.timelineDirty = false;
        const query = new URLSearchParams({ limit: String(timelineSize) });
        if (state.timelineSeq > 0) query.set("after", `v1.${state.timelineSeq}`);
        const answer = await api(`/api/dashboard/timeline?${query}`);
        addTimelineEntries(answer.entries);
      } while (state.timelineDirty);
    } catch (error) {
      failed(error);
    } finally {
      state.timelineLoading = false;
    }
  }

  function addTimelineEntries(entries) {
    const list = $("timeline");
    for (const entry of entries) {
      if (entry.seq <= state.timelineSeq) continue;
      state.timelineSeq = entry.seq;
      list.prepend(renderEntry(entry));
    }
    while (list.children.length > timelineSize) list.lastElementChild.remove();
    $("timeline-empty").hidden = list.children.length > 0;
  }

  function renderEntry(entry) {
    const historic = entry.seq <= state.loadedSeq;
    const shownAt = historic ? null : (arrivalOf(entry.seq) || Date.now());
    const reasonLabel = { refresh: "refresh", refresh_failed: "refresh failed", system_post: "system post" }[entry.reason] || entry.reason;
    const stepLabel = entry.announced || (entry.reason === "system_post" ? "system post changed" : entry.reason);
    const item = element("li", {
      className: `event ${entry.reason}${historic ? "" : " fresh"}`,
      attrs: {
        "data-seq": entry.seq,
        "data-reason": entry.reason,
        "data-step": entry.announced || "",
        "data-project-id": entry.projectId,
        "data-post-id": entry.post ? entry.post.id : null,
        "data-correlation-id": entry.correlationId,
      },
    });
    const head = element("div", { className: "event-head" }, [
      element("time", { text: clock(entry.occurredAt), attrs: { datetime: entry.occurredAt } }),
      element("span", { className: "event-step", text: stepLabel }),
      element("span", { className: "badge", text: reasonLabel }),
      element("span", { text: entry.projectName }),
      entry.contentTypes.length
        ? element("span", { className: "muted", text: entry.contentTypes.map((kind) => `${kind} posts`).join(", ") })
        : null,
    ]);
    item.append(head);
    if (entry.post) {
      item.append(element("div", { className: "event-text", text: `“${entry.post.text}” · post ${entry.post.id}` }));
    }
    if (entry.note) item.append(element("div", { className: "event-text", text: entry.note }));

    const steps = entry.steps.map((step) => ({ name: step.step, at: new Date(step.at).getTime(), detail: step.detail }));
    if (shownAt !== null) steps.push({ name: "shown", at: shownAt, detail: "on this page (browser clock)" });
    const path = element("ol", { className: "path", attrs: { "aria-label": "Steps and timings" } });
    steps.forEach((step, index) => {
      const when = index === 0 ? clock(new Date(step.at).toISOString()) : duration(step.at - steps[index - 1].at);
      path.append(element("li", { attrs: { title: step.detail || "", "data-step": step.name } }, [
        element("span", { className: "name", text: step.name }),
        document.createTextNode(" "),
        element("span", { className: "delta", text: when }),
      ]));
    });
    item.append(path);

    const occurred = entry.occurredAt ? new Date(entry.occurredAt).getTime() : NaN;
    if (shownAt !== null && Number.isFinite(occurred)) {
      const latency = shownAt - occurred;
      item.dataset.latencyMs = String(Math.round(latency));
      item.append(element("div", {
        className: "latency", text: `latency ${duration(latency).replace("+", "")} (occurred → shown)`,
      }));
    } else {
      item.append(element("div", { className: "latency historic", text: "before this page was opened" }));
    }
    return item;
  }

  // --- start ---------------------------------------------------------------------------------

  function tick() {
    for (const node of document.querySelectorAll("[data-due]")) {
      node.textContent = relative(node.dataset.due);
    }
  }

  async function start() {
    $("timeline-size").textContent = String(timelineSize);
    setMode("connecting");
    try {
      const answer = await loadProjects();
      state.initialized = true;
      state.cursor = answer.cursor;
      state.loadedSeq = seqOf(answer.cursor);
      await loadTimeline();
      notice("");
    } catch (error) {
      failed(error);
      setMode("offline");
      if (error.status !== 401) setTimeout(start, 5000);
      return;
    }
    openStream(false);
    setInterval(tick, 1000);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
