// flasher's dashboard: live updates from /api/v1/events (Server-Sent Events). Plain JavaScript, no build step.
"use strict";
var flasher = (function () {
  var live = document.getElementById("live");

  function setLive(text, ok) {
    if (!live) return;
    live.textContent = text;
    live.className = "live " + (ok ? "live-ok" : "live-down");
  }

  // Subscribe to the event stream with the page's filters; EventSource reconnects by itself and sends
  // Last-Event-ID, so the server resumes where the page left off (or says "reset").
  function subscribe(query, onTask, onReset) {
    var source = new EventSource("/api/v1/events" + (query ? "?" + query : ""));
    source.onopen = function () { setLive("live", true); };
    source.onerror = function () { setLive("reconnecting…", false); };
    source.addEventListener("task", function (message) { onTask(JSON.parse(message.data)); });
    source.addEventListener("reset", function () { onReset(); });
    return source;
  }

  function cell(text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text || "";
    return td;
  }

  function statusSpan(status) {
    var span = document.createElement("span");
    span.className = "st st-" + status;
    span.textContent = status;
    return span;
  }

  function newRow(event) {
    var tr = document.createElement("tr");
    tr.id = "row-" + event.server + "-" + event.kind;
    tr.dataset.server = event.server;
    tr.dataset.kind = event.kind;
    var server = cell("", "server");
    var link = document.createElement("a");
    link.href = "/ui/servers/" + event.server + "/" + event.kind;
    link.textContent = event.name || event.server;
    server.appendChild(link);
    tr.appendChild(server);
    tr.appendChild(cell(((event.vendor || "") + " " + (event.model || "")).trim()));
    tr.appendChild(cell(event.kind));
    var status = cell("", "status");
    tr.appendChild(status);
    tr.appendChild(cell(""));
    tr.appendChild(cell("", "message"));
    tr.appendChild(cell("", "worker"));
    tr.appendChild(cell("", "updated"));
    return tr;
  }

  function stripTime(line) {
    if (!line) return "";
    var space = line.indexOf(" ");
    return space > 0 && /^\d{4}-\d\d-\d\dT/.test(line) ? line.slice(space + 1) : line;
  }

  function reload(url, target) {
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error(response.status + " " + response.statusText);
      return response.text();
    }).then(function (html) { target.innerHTML = html; });
  }

  // A row the page did not show: its cells come from the server (what the task asks for, vendor, model).
  function fillRow(row, event) {
    fetch("/ui/servers/" + event.server + "/" + event.kind + "/row", { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (html) {
        if (!html) return;
        var holder = document.createElement("tbody");
        holder.innerHTML = html;
        var fresh = holder.querySelector("tr");
        var current = document.getElementById(row.id);
        if (fresh && current) {
          current.replaceWith(fresh);
          if (latest[row.id]) apply(fresh, latest[row.id]);  // events that came during the fetch win
        }
      }).catch(function () {});
  }

  var latest = {};

  function apply(row, event) {
    row.querySelector(".status").replaceChildren(statusSpan(event.status));
    if (event.message) row.querySelector(".message").textContent = stripTime(event.message);
    row.querySelector(".worker").textContent = event.worker || "";
    row.querySelector(".updated").textContent = event.updatedAt || "";
    row.dataset.status = event.status;
  }

  function fleet() {
    var table = document.getElementById("tasks");
    var body = document.getElementById("task-rows");
    subscribe(table.dataset.events, function (event) {
      var id = "row-" + event.server + "-" + event.kind;
      var row = document.getElementById(id);
      latest[id] = event;
      if (event.status === "deleted") { if (row) row.remove(); return; }
      if (!row) {
        row = newRow(event);
        body.insertBefore(row, body.firstChild);
        fillRow(row, event);
      }
      apply(row, event);
    }, function () { latest = {}; reload(table.dataset.rows, body); });
    var form = document.getElementById("request-form");
    if (form) form.addEventListener("submit", function (submit) { submit.preventDefault(); request(); });
  }

  var TASKS = {
    "power:on": ["server_control", { action: "set_power_state", action_parameter: "on" }],
    "power:off": ["server_control", { action: "set_power_state", action_parameter: "off" }],
    "power:cycle": ["server_control", { action: "set_power_state", action_parameter: "cycle" }],
    "power:reset": ["server_control", { action: "set_power_state", action_parameter: "reset" }],
    "power:status": ["server_control", { action: "get_power_state" }],
    "bmc-reset": ["server_control", { action: "power_cycle_bmc" }],
    "install": ["install", { method: "out-of-band" }],
    "install-dry-run": ["install", { method: "out-of-band", dryRun: true }]
  };

  function request() {
    var server = document.getElementById("request-server").value.trim();
    var task = TASKS[document.getElementById("request-task").value];
    var result = document.getElementById("request-result");
    result.textContent = "…";
    fetch("/api/v1/servers/" + encodeURIComponent(server) + "/tasks/" + task[0], {
      method: "PUT",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(task[1])
    }).then(function (response) {
      return response.json().then(function (body) {
        result.textContent = response.ok ? "requested: task " + body.taskID : "refused: " + body.message;
        result.className = "result " + (response.ok ? "result-ok" : "result-error");
      });
    }).catch(function (error) { result.textContent = "failed: " + error; });
  }

  // A function that re-reads a view's HTML fragment, coalesced: one fetch at a time, one more if asked meanwhile.
  // data-gap (milliseconds) spaces the fetches out: a big rollout's view is not re-read on every event.
  function refresher(target, done) {
    var busy = false, again = false;
    var gap = parseInt(target.dataset.gap || "0", 10);
    function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      reload(target.dataset.fragment, target).then(function () { if (done) done(true); },
        function () { if (done) done(false); }).then(function () {
        setTimeout(function () {
          busy = false;
          if (again) { again = false; refresh(); }
        }, gap);
      });
    }
    return refresh;
  }

  // A view that re-reads its HTML fragment on each event that concerns it.
  function fragment(id) {
    var target = document.getElementById(id);
    var refresh = refresher(target);
    subscribe(target.dataset.events, refresh, refresh);
    return refresh;
  }

  // A view with no events of its own (the rollout list): re-read every data-poll milliseconds.
  function poll(id) {
    var target = document.getElementById(id);
    var refresh = refresher(target, function (ok) { setLive(ok ? "live" : "reconnecting…", ok); });
    setLive("live", true);
    setInterval(refresh, parseInt(target.dataset.poll, 10) || 3000);
  }

  // One rollout: re-read on each task event of its members and every data-poll milliseconds (a pause or the
  // record's other changes publish no event); the pause/resume/abort buttons call the API, then re-read.
  function rollout(id) {
    var target = document.getElementById(id);
    var refresh = fragment(id);
    setInterval(refresh, parseInt(target.dataset.poll, 10) || 3000);
    var control = document.getElementById("rollout-control");
    if (!control) return;
    var result = document.getElementById("rollout-result");
    control.addEventListener("click", function (click) {
      var button = click.target.closest("button[data-action]");
      if (!button) return;
      if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
      var action = button.dataset.action;
      result.textContent = action + "…";
      result.className = "result";
      fetch("/api/v1/rollouts/" + encodeURIComponent(control.dataset.rollout) + "/" + action, {
        method: "POST",
        credentials: "same-origin"
      }).then(function (response) {
        return response.json().then(function (body) {
          result.textContent = response.ok ? action + ": rollout " + body.state : "refused: " + body.message;
          result.className = "result " + (response.ok ? "result-ok" : "result-error");
          refresh();
        });
      }).catch(function (error) { result.textContent = "failed: " + error; });
    });
  }

  return { fleet: fleet, fragment: fragment, poll: poll, rollout: rollout };
})();
