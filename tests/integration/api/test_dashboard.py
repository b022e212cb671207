"""The dashboard in a real browser (headless Chromium): flag a server from the fleet view and watch its row go
queued, active, success without a reload; the task view follows the task live too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.support.api import APIStack
from tests.support.browser import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]

#: Records every status the row of (server, kind) shows, as the DOM changes (a MutationObserver).
RECORD = """
window.__loaded = window.__loaded || Date.now();
window.__seen = [];
const body = document.getElementById('task-rows');
const watch = () => {
  const row = document.getElementById(arguments[0]);
  const status = row && row.querySelector('.status');
  const text = status ? status.textContent.trim() : null;
  if (text && window.__seen[window.__seen.length - 1] !== text) window.__seen.push(text);
};
new MutationObserver(watch).observe(body, {subtree: true, childList: true, characterData: true});
return window.__loaded;
"""


def wait(driver: webdriver.Chrome, check: Any, timeout: float = 60) -> Any:
    return wait_until(driver, check, timeout)


def test_flag_a_server_and_watch_its_row_go_queued_active_success(
    api: APIStack, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    server = api.servers[1]
    row_id = f"row-{server}-server_control"
    browser.get(api.url + "/ui")
    wait(browser, lambda d: d.find_element(By.ID, "live").text == "live")
    loaded = browser.execute_script(RECORD, row_id)

    browser.find_element(By.ID, "request-server").send_keys(server)
    Select(browser.find_element(By.ID, "request-task")).select_by_value("power:cycle")
    browser.find_element(By.ID, "request-submit").click()

    wait(browser, lambda d: "requested: task" in d.find_element(By.ID, "request-result").text)
    wait(browser, lambda d: d.execute_script("return window.__seen").count("success") == 1)
    seen = browser.execute_script("return window.__seen")
    text = f"var r = document.getElementById('{row_id}'); return r ? r.innerText : '';"
    row = wait(browser, lambda d: "set_power_state cycle" in d.execute_script(text) and d.execute_script(text))
    shot = tmp_path / "dashboard-fleet.png"
    browser.save_screenshot(str(shot))

    assert browser.execute_script("return window.__loaded") == loaded  # the page was never reloaded
    ordered = [s for s in seen if s in ("queued", "active", "success")]
    assert ordered == ["queued", "active", "success"], seen
    assert "server power state set successful: cycle" in row
    assert "set_power_state cycle" in row  # the row's other cells came from the server
    assert shot.stat().st_size > 10_000


def test_the_task_view_follows_an_install_live(api: APIStack, browser: webdriver.Chrome, tmp_path: Path) -> None:
    server = api.servers[0]
    assert api.put(f"/api/v1/servers/{server}/tasks/install", json={"dryRun": True}).status_code == 201
    browser.get(f"{api.url}/ui/servers/{server}/install")
    wait(browser, lambda d: d.find_element(By.ID, "live").text == "live")
    loaded = browser.execute_script("window.__loaded = Date.now(); return window.__loaded")

    status = "var s = document.getElementById('task-status'); return s && s.textContent;"
    wait(browser, lambda d: d.execute_script(status) == "success")
    lines = "return Array.from(document.querySelectorAll('#messages li')).map(li => li.innerText);"
    messages = browser.execute_script(lines)  # in one go: the fragment is re-read on every event
    browser.save_screenshot(str(tmp_path / "dashboard-task.png"))
    browser.get(api.url + "/ui/queue")
    wait(browser, lambda d: "Queue" in d.find_element(By.TAG_NAME, "h1").text)
    browser.save_screenshot(str(tmp_path / "dashboard-queue.png"))

    assert loaded
    assert any("dry run" in m or "plan" in m for m in messages), messages
    assert browser.find_element(By.CSS_SELECTOR, "h2").text.startswith("inflight")  # every state, even empty
