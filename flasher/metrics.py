"""Prometheus metrics that flasher exports on ``/metrics``.

Defined in one place so that every module increments the same series; the service's HTTP server exposes the
default registry. Label values are bounded sets (kinds, states, steps, vendors, component slugs, call names):
never a server id, so the series count does not grow with the fleet.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TASKS = Gauge(
    "flasher_tasks",
    "Tasks seen in the inventory at the last poll, by kind (install, server_control) and status.",
    ["kind", "status"],
)
TASKS_FINISHED = Counter(
    "flasher_tasks_finished_total",
    "Tasks this replica ran to an end, by kind and final status (success, failed, cancelled).",
    ["kind", "status"],
)
STEP_DURATION = Histogram(
    "flasher_step_duration_seconds",
    "Duration of one install or control step, by step, BMC vendor and component slug.",
    ["step", "vendor", "component"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
QUEUE_DEPTH = Gauge(
    "flasher_queue_depth", "Tasks in the Redis queue, by state (queued, delayed, inflight, dead).", ["state"]
)
POLL_DURATION = Histogram(
    "flasher_poll_duration_seconds",
    "Duration of one inventory poll (list flagged servers, admit, reconcile).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
INVENTORY_ERRORS = Counter(
    "flasher_inventory_errors_total",
    "Inventory calls that failed after retries, by call and error class.",
    ["call", "error"],
)
BMC_ERRORS = Counter("flasher_bmc_errors_total", "BMC errors, by error class.", ["error"])
BYTES_DOWNLOADED = Counter("flasher_firmware_bytes_downloaded_total", "Firmware image bytes downloaded into the store.")
BYTES_SERVED = Counter("flasher_firmware_bytes_served_total", "Firmware image bytes served to BMCs by the file server.")
ROLLOUT_MEMBERS = Gauge(
    "flasher_rollout_members",
    "Members of each active rollout by status (new, queued, active, success, failed, cancelled), as the replica"
    " that ticked the rollout last saw them.",
    ["rollout", "status"],
)
ROLLOUT_HALTS = Counter(
    "flasher_rollout_halts_total",
    "Firmware halted by a rollout's breaker (counted once per rollout, generation and firmware, by the replica"
    " that saw it first).",
    ["rollout", "firmware"],
)
ROLLOUT_WAITING = Gauge(
    "flasher_rollout_waiting",
    "Waiting members of each active rollout by the reason they wait (wave, window, cap, breaker, paused, aborted).",
    ["rollout", "reason"],
)
EVENTS_PUBLISHED = Counter("flasher_events_published_total", "Task events published to the Redis stream.")
EVENTS_DROPPED = Counter(
    "flasher_events_dropped_total", "Task events not published (Redis unavailable or refused the write)."
)
API_REQUESTS = Counter(
    "flasher_api_requests_total", "Requests answered by flasher api, by route and status code.", ["route", "code"]
)
SSE_CLIENTS = Gauge("flasher_api_event_clients", "Clients connected to flasher api's event stream.")
