"""The netboot endpoints' HTTP contract (Pixiecore API mode, iPXE, the one-time callback), against the sandbox
inventory. Always runs: no QEMU needed (the real network boot is ``test_netboot_qemu.py``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import requests

from flasher.config import BootProfileSettings, InventorySettings, NetbootSettings, Settings
from flasher.constants import BOOT_NAMESPACE, PROVISION_NAMESPACE
from flasher.inventory.client import InventoryClient
from flasher.netboot.lookup import mac_namespace
from flasher_sandbox.procs import free_port
from flasher_sandbox.servers import InventoryServer
from tests.support.netboot import serve_netboot

pytestmark = pytest.mark.integration

MAC = "52:54:00:12:34:56"
PROFILE = BootProfileSettings(
    kernel="{base_url}/assets/vmlinuz",
    initrd=["{base_url}/assets/initrd-{uuid}.gz"],
    cmdline="console=ttyS0 flasher.uuid={uuid} flasher.facility={facility} flasher.callback={callback_url}",
)


def _settings(inventory: InventoryServer) -> Settings:
    port = free_port()
    return Settings(
        inventory=InventorySettings(url=inventory.url, retry_deadline=2.0, retry_max_wait=0.1),
        netboot=NetbootSettings(host="127.0.0.1", port=port, profiles={"rescue": PROFILE}, token_ttl=600),
    )


def _seed(inventory: InventoryServer, boot: dict[str, object] | None, mac: str = MAC) -> str:
    attributes: dict[str, object] = {mac_namespace(mac): {"mac": mac, "slug": "nic"}}
    if boot is not None:
        attributes[BOOT_NAMESPACE] = boot
    seeded = inventory.seed({"servers": [{"name": f"nb-{mac}", "facility": "lab1", "attributes": attributes}]})
    return str(seeded["server_ids"][0])


def test_boot_ipxe_and_callback_contract(clean_inventory: InventoryServer) -> None:
    settings = _settings(clean_inventory)
    uuid = _seed(clean_inventory, {"profile": "rescue"})
    _seed(clean_inventory, None, mac="52:54:00:00:00:02")  # known, but no boot profile
    client = InventoryClient(settings.inventory)
    with serve_netboot(settings) as netboot:
        base = netboot.url
        answer = requests.get(f"{base}/v1/boot/{MAC.upper()}", timeout=10)
        assert answer.status_code == 200
        body = answer.json()
        assert set(body) == {"kernel", "initrd", "cmdline"}
        assert body["kernel"] == f"{base}/assets/vmlinuz"
        assert body["initrd"] == [f"{base}/assets/initrd-{uuid}.gz"]
        match = re.search(r"flasher\.callback=(\S+)", body["cmdline"])
        assert match and f"flasher.uuid={uuid} flasher.facility=lab1" in body["cmdline"]
        callback = match.group(1)
        assert callback.startswith(f"{base}/v1/callback/{uuid}/")
        # Pixiecore asks more than once per boot: the same token every time
        assert requests.get(f"{base}/v1/boot/{MAC}", timeout=10).json() == body
        record = client.get_attribute(uuid, PROVISION_NAMESPACE).as_object()
        assert record["state"] == "booting" and record["mac"] == MAC
        assert callback.rsplit("/", 1)[1] not in str(record)  # the token itself is stored nowhere

        script = requests.get(f"{base}/v1/ipxe", params={"mac": MAC}, timeout=10)
        assert script.status_code == 200
        assert script.text.splitlines()[0] == "#!ipxe"
        assert f"kernel {base}/assets/vmlinuz console=ttyS0" in script.text
        assert f"initrd {base}/assets/initrd-{uuid}.gz" in script.text and script.text.rstrip().endswith("boot")

        assert requests.get(f"{base}/v1/boot/52:54:00:00:00:01", timeout=10).status_code == 404  # unknown MAC
        assert requests.get(f"{base}/v1/boot/52:54:00:00:00:02", timeout=10).status_code == 404  # no profile
        assert requests.get(f"{base}/v1/boot/not-a-mac", timeout=10).status_code == 400
        assert requests.get(f"{base}/v1/ipxe", params={"mac": "52:54:00:00:00:01"}, timeout=10).status_code == 404

        wrong = callback[:-4] + "AAAA"
        assert requests.get(wrong, timeout=10).status_code == 404
        done = requests.post(callback, data={"hostname": "rescue", "kernel": "6.1"}, timeout=10)
        assert done.status_code == 200 and done.json() == {"status": "accepted"}
        record = client.get_attribute(uuid, PROVISION_NAMESPACE).as_object()
        assert record["state"] == "called-back"
        assert record["callback"] == {"hostname": "rescue", "kernel": "6.1"}
        assert requests.get(callback, timeout=10).status_code == 410  # one time only


def test_an_expired_record_refuses_its_callback(clean_inventory: InventoryServer) -> None:
    settings = _settings(clean_inventory)
    uuid = _seed(clean_inventory, {"kernel": "http://boot.example/vmlinuz", "cmdline": "cb={callback_url}"})
    client = InventoryClient(settings.inventory)
    with serve_netboot(settings) as netboot:
        body = requests.get(f"{netboot.url}/v1/boot/{MAC}", timeout=10).json()
        assert body["initrd"] == []  # an inline profile without initrds
        callback = body["cmdline"].removeprefix("cb=")
        record = client.get_attribute(uuid, PROVISION_NAMESPACE).as_object()
        past = (datetime.now(UTC) - timedelta(seconds=5)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        client.replace_attribute(uuid, PROVISION_NAMESPACE, {**record, "expiresAt": past})
        assert requests.get(callback, timeout=10).status_code == 410


def test_a_profile_that_does_not_exist_is_no_boot(clean_inventory: InventoryServer) -> None:
    settings = _settings(clean_inventory)
    _seed(clean_inventory, {"profile": "nope"})
    with serve_netboot(settings) as netboot:
        assert requests.get(f"{netboot.url}/v1/boot/{MAC}", timeout=10).status_code == 404
