"""The rollout views in a real browser (headless Chromium): a sandbox rollout created through the API and paused;
the page's resume button starts it again, and the second wave's member goes from waiting to success without a
reload, the page following it from its members' task events; the list links to the rollout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from flasher_sandbox.servers import ImageServer, InventoryServer
from tests.support.api import APIStack, api_stack
from tests.support.browser import wait_until
from tests.support.fixtures.bmcsim import BmcFleetPool

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]

#: Records, per member row, every status the rollout view shows, as the DOM changes (a MutationObserver on the
#: view, whose fragment is replaced on each refresh).
RECORD = """
window.__loaded = window.__loaded || Date.now();
window.__seen = {};
const view = document.getElementById('rollout');
const watch = () => {
  document.querySelectorAll('tr[id^="member-"]').forEach(row => {
    const text = row.querySelector('.status').textContent.trim();
    const seen = window.__seen[row.id] = window.__seen[row.id] || [];
    if (seen[seen.length - 1] !== text) seen.push(text);
  });
};
watch();
new MutationObserver(watch).observe(view, {subtree: true, childList: true, characterData: true});
return window.__loaded;
"""


@pytest.fixture
def stack(
    bmcsim_pool: BmcFleetPool,
    clean_inventory: InventoryServer,
    redis_url: str,
    firmware_server: ImageServer,
    tmp_path: Path,
) -> Iterator[APIStack]:
    fleet = bmcsim_pool.get(count=2, install_seconds=0.5, offline_seconds=0.5, power_seconds=0.1)
    rollout = {"tick_interval": 0.3, "min_tick_gap": 0.1}
    with api_stack(clean_inventory, fleet, firmware_server, redis_url, tmp_path, rollout=rollout) as running:
        yield running


def wait(driver: webdriver.Chrome, check: Any, timeout: float = 90) -> Any:
    return wait_until(driver, check, timeout)


def test_resume_a_rollout_and_watch_its_waves_go_to_success(
    stack: APIStack, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    created = stack.post(
        "/api/v1/rollouts", json={"name": "live", "select": ["all"], "resolve": True, "waves": "1,100%"}
    )
    assert created.status_code == 201, created.text
    assert stack.post("/api/v1/rollouts/live/pause").status_code == 200
    second = next(server for server, wave in created.json()["members"].items() if wave == 2)

    browser.get(stack.url + "/ui/rollouts")
    wait(browser, lambda d: d.find_element(By.ID, "rollout-live"))
    browser.find_element(By.LINK_TEXT, "live").click()
    wait(browser, lambda d: d.find_element(By.ID, "live").text == "live")
    loaded = browser.execute_script(RECORD)
    state = "return document.getElementById('rollout-state').textContent.trim()"
    assert browser.execute_script(state) == "paused"
    # Fragments are re-rendered every few seconds: read them through wait (a replaced element is looked up again).
    wait(browser, lambda d: "threshold: 3 failures per firmware" in d.find_element(By.ID, "rollout-breaker").text)
    wait(browser, lambda d: "max active" in d.find_element(By.ID, "rollout-caps").text)

    wait(browser, lambda d: d.find_element(By.ID, "rollout-resume").click() or True)
    wait(browser, lambda d: "resume: rollout running" in d.find_element(By.ID, "rollout-result").text)
    seen = "return window.__seen['member-" + second + "'] || []"
    wait(browser, lambda d: (d.execute_script(seen) or [""])[-1] == "success", timeout=150)
    wait(browser, lambda d: d.execute_script(state) == "completed", timeout=30)
    shot = tmp_path / "dashboard-rollout.png"
    browser.save_screenshot(str(shot))
    statuses = browser.execute_script(seen)
    wave = wait(browser, lambda d: d.find_element(By.ID, "wave-2").text)

    assert browser.execute_script("return window.__loaded") == loaded  # the page was never reloaded
    assert statuses[0] == "new" and statuses[-1] == "success", statuses
    order = ["new", "queued", "active", "success"]
    assert [s for s in order if s in statuses] == statuses, statuses  # in order, each once
    assert len(statuses) >= 3, statuses  # it was seen on its way (queued or active), not only before and after
    assert "success 1" in wave
    assert stack.get("/api/v1/rollouts/live").json()["counts"] == {"success": 2}
    assert shot.stat().st_size > 10_000
