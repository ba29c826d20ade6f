"""The fleet wire format: a signed policy is applied only as signed, for its site, newer, and valid.

A broker (or anyone who can publish to it) must not be able to open gates: every change to a
signed message, a message for another site, an older one replayed, one signed by another key, and
bytes that are not a policy message at all are refused with a reason, and never raise anything
but PolicyRejected.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.config import PolicyConfig
from sentinel.fleet import protocol
from sentinel.fleet.protocol import (
    MAX_MESSAGE_BYTES,
    REJECT_REASONS,
    DeviceState,
    PolicyRejected,
    canonical_json,
    device_topic,
    generate_signing_key,
    load_private_key,
    load_public_key,
    offline_state,
    parse_device_topic,
    policy_topic,
    sign_policy,
    verify_policy,
)

ISSUED = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)  # a fixed instant in the message, not compared with the clock


@pytest.fixture(scope="module")
def keys():
    private, public = generate_signing_key()
    return load_private_key(private), load_public_key(public)


def _reason(public, payload: bytes, *, site="mall-1", current=None) -> str:
    with pytest.raises(PolicyRejected) as caught:
        verify_policy(public, payload, site=site, current_version=current)
    assert caught.value.reason in REJECT_REASONS
    return caught.value.reason


def test_a_signed_policy_is_applied_as_signed(keys):
    private, public = keys
    payload = sign_policy(private, "mall-1", 7, ISSUED, PolicyConfig(nat_window_h=24, allowed_colours=["green"], offline="deny"))
    version, policy = verify_policy(public, payload, site="mall-1", current_version=6)
    assert version == 7
    assert policy.nat_window_h == 24 and policy.offline == "deny"


def test_changing_any_signed_field_breaks_the_signature(keys):
    private, public = keys
    message = json.loads(sign_policy(private, "mall-1", 7, ISSUED, PolicyConfig(nat_window_h=24)))
    for field, value in [("version", 8), ("issued_at", (ISSUED + timedelta(seconds=1)).isoformat())]:
        forged = dict(message, **{field: value})
        assert _reason(public, json.dumps(forged).encode()) == "bad_signature"
    opened = dict(message, policy=dict(message["policy"], allowed_colours=["green", "yellow"]))
    assert _reason(public, json.dumps(opened).encode()) == "bad_signature"


def test_another_site_another_key_an_older_version_are_refused(keys):
    private, public = keys
    payload = sign_policy(private, "mall-1", 7, ISSUED, PolicyConfig())
    assert _reason(public, payload, site="factory-2") == "wrong_site"
    assert _reason(public, payload, current=7) == "not_newer"
    assert _reason(public, payload, current=9) == "not_newer"
    _, other_public = generate_signing_key()
    assert _reason(load_public_key(other_public), payload) == "bad_signature"


def test_a_signed_policy_the_config_file_would_refuse_is_refused(keys):
    private, public = keys
    with pytest.raises(ValueError):  # the fleet side does not sign it in the first place
        sign_policy(private, "mall-1", 3, ISSUED, {"nat_window_h": 12})
    # signed anyway (a key holder bypassing the publisher): the device still refuses it
    bad = {"nat_window_h": 12, "allowed_colours": ["green"]}
    signature = private.sign(protocol._signed_part("mall-1", 3, ISSUED, bad))
    message = protocol.SignedPolicy(site="mall-1", version=3, issued_at=ISSUED, policy=bad, signature=base64.b64encode(signature).decode())
    assert _reason(public, message.model_dump_json().encode()) == "invalid_policy"


def test_oversized_and_malformed_messages_are_refused_with_a_reason(keys):
    _, public = keys
    assert _reason(public, b"x" * (MAX_MESSAGE_BYTES + 1)) == "too_large"
    for junk in [b"", b"{", b"[]", b"null", "政策".encode(), b'{"v":1}', b'{"v":1,"site":"mall-1","version":1,"issued_at":"soon","policy":{},"signature":"AA=="}']:
        assert _reason(public, junk) == "malformed"


_PUBLIC = load_public_key(generate_signing_key()[1])


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.dictionaries(st.sampled_from(["v", "site", "version", "issued_at", "policy", "signature"]), st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.integers(), max_size=3))).map(lambda d: json.dumps(d).encode())))
def test_no_bytes_raise_anything_but_a_refusal(payload):
    with pytest.raises(PolicyRejected):
        verify_policy(_PUBLIC, payload, site="mall-1", current_version=None)


def test_topics_carry_only_ids_and_parse_back():
    assert device_topic("sentinel", "mall-1", "gate-3", "state") == "sentinel/mall-1/gate-3/state"
    assert parse_device_topic("sentinel", "sentinel/mall-1/gate-3/counters") == ("mall-1", "gate-3", "counters")
    assert policy_topic("district/7", "mall-1") == "district/7/mall-1/policy"
    for topic in ["sentinel/mall-1/policy", "sentinel/a/b/c/state", "other/mall-1/gate-3/state", "sentinel/mall 1/gate-3/state", "sentinel/+/gate-3/state"]:
        assert parse_device_topic("sentinel", topic) is None
    with pytest.raises(ValueError):
        device_topic("sentinel", "mall/#", "gate-3", "state")  # a wildcard or level can't be smuggled in


def test_the_last_will_says_offline_and_nothing_else():
    will = offline_state("mall-1", "gate-3")
    assert will.online is False
    data = json.loads(will.model_dump_json(exclude_none=True))
    assert set(data) <= {"v", "site", "device", "online", "alarms"}
    assert DeviceState.model_validate_json(will.model_dump_json()) == will


def test_canonical_json_is_stable_across_key_order():
    assert canonical_json({"b": 1, "a": "健康码"}) == canonical_json({"a": "健康码", "b": 1}) == '{"a":"健康码","b":1}'.encode()
