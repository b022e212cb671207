"""Boot profiles, templates, tokens and MACs (flasher.netboot)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from flasher.config import BootProfileSettings
from flasher.netboot import state
from flasher.netboot.lookup import MACError, canonical_mac, mac_namespace
from flasher.netboot.profiles import ProfileError, render, resolve
from flasher.netboot.tokens import token_for, token_matches

PROFILES = {
    "rescue": BootProfileSettings(kernel="{base_url}/vmlinuz", initrd=["{base_url}/initrd"], cmdline="a={uuid}")
}


def test_a_named_profile_an_override_and_an_inline_one() -> None:
    named = resolve({"profile": "rescue"}, PROFILES)
    assert named is not None and (named.kernel, named.initrd, named.name) == (
        "{base_url}/vmlinuz",
        ("{base_url}/initrd",),
        "rescue",
    )
    override = resolve({"profile": "rescue", "cmdline": "b={mac}"}, PROFILES)
    assert override is not None and override.cmdline == "b={mac}" and override.initrd == named.initrd
    inline = resolve({"kernel": "http://k", "initrd": "http://i"}, {})
    assert inline is not None and inline.initrd == ("http://i",) and inline.name is None
    assert resolve({"profile": "rescue", "enabled": False}, PROFILES) is None
    rendered = named.render({"base_url": "http://nb", "uuid": "U"})
    assert (rendered.kernel, rendered.cmdline) == ("http://nb/vmlinuz", "a=U")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"profile": "nope"}, "field 'profile': value 'nope' is not a boot profile (known: rescue)"),
        ({}, "field 'kernel'"),
        ({"kernel": "http://k", "initrd": [1]}, "field 'initrd'"),
        ({"kernel": "http://k", "cmdline": 3}, "field 'cmdline'"),
        ([], "is not an object"),
    ],
)
def test_bad_boot_attributes_name_the_field(data: object, message: str) -> None:
    with pytest.raises(ProfileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(data, PROFILES)


def test_unknown_placeholders_are_refused_in_settings_and_at_render() -> None:
    with pytest.raises(ValidationError, match="unknown placeholder 'tokn'"):
        BootProfileSettings(kernel="http://k", cmdline="t={tokn}")
    with pytest.raises(ProfileError, match="unknown placeholder 'x'"):
        render("{x}", {})
    assert render("{{literal}} {mac}", {"mac": "m"}) == "{literal} m"


def test_tokens_are_bound_to_server_and_nonce() -> None:
    token = token_for(b"k", "uuid-1", "n1")
    assert token_matches(b"k", "uuid-1", "n1", token)
    assert not token_matches(b"k", "uuid-2", "n1", token)
    assert not token_matches(b"k", "uuid-1", "n2", token)
    assert not token_matches(b"other", "uuid-1", "n1", token)
    assert len(token) == 43 and "=" not in token


def test_records_open_until_they_expire_or_are_used() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    record = state.new_record(now, 60, state=state.WAITING, by="provision")
    assert state.is_open(record, now) and not state.is_open(record, now + timedelta(seconds=61))
    assert not state.is_open({**record, "state": state.CALLED_BACK}, now)
    assert record["nonce"] != state.new_record(now, 60, state=state.WAITING, by="x")["nonce"]


def test_macs() -> None:
    assert canonical_mac("52-54-00-AB-CD-EF") == "52:54:00:ab:cd:ef"
    assert mac_namespace("52:54:00:AB:CD:EF") == "sh.hollow.flasher.mac.525400abcdef"
    with pytest.raises(MACError, match="'nope' is not a MAC address"):
        canonical_mac("nope")
