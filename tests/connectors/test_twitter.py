"""X (Twitter): CRC, signature, AAA and XAA webhooks, v2 polling mappings, and the poller."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
import tweepy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import ConnectorError, MalformedPayload, RawMessage, WireRequest
from connectors.twitter.poll import RateBudget, TwitterPoller
from connectors.twitter.wire import (
    RateLimited,
    TwitterApiError,
    TwitterConnector,
    messages_from_dm_events,
    messages_from_mentions,
)
from tests.connectors.cases import NOW, Case, fixture, mutated_fixtures, run_case, wire
from tests.connectors.signing import twitter_signature
from tests.fakes.twitter_api import FakeTwitterApi

SECRET = "x-consumer-secret-abcdef"
URL = "https://kanal.example/webhooks/twitter"
OWN = "900"


def connector() -> TwitterConnector:
    return TwitterConnector(SECRET, own_user_ids={"901"})


def x(name: str) -> bytes:
    return fixture("twitter", name)


def signed(body: bytes, secret: str = SECRET) -> WireRequest:
    return wire(
        "POST", URL, body, {"x-twitter-webhooks-signature": twitter_signature(secret, body)}
    )


def _attachments_only_image(messages: list[RawMessage]) -> None:
    assert messages[0].sender.name == "Warga Empat Dua"
    assert messages[0].sender.handle == "warga42"


def _extended(messages: list[RawMessage]) -> None:
    message = messages[0]
    assert message.text.endswith("Mohon segera ditindaklanjuti.")
    assert message.in_reply_to == ("tweet:1869999999999999999",)


CASES = [
    Case(
        "an AAA direct message keeps sender, name and handle",
        signed(x("dm__text.json")),
        text="Sampah menumpuk di pasar Senen",
        sender="42",
        external_id="dm:1777",
        channel="twitter",
        group_key="dm:twitter:900:42",
        check=_attachments_only_image,
    ),
    Case(
        "a DM photo becomes an attachment and its t.co link leaves the text",
        signed(x("dm__with_photo.json")),
        text="Lihat ini",
        external_id="dm:1778",
        attachments=[("https://ton.twitter.com/1.1/ton/data/dm/1778/555/abc.jpg", "image/jpeg")],
        group_key="dm:twitter:900:42",
    ),
    Case("our own DM (sender == for_user_id) is dropped", signed(x("dm__own_send.json")), count=0),
    Case(
        "a DM from another account of ours (own_user_ids) is dropped",
        signed(
            b'{"for_user_id":"900","direct_message_events":[{"type":"message_create","id":"1",'
            b'"created_timestamp":"1767225600000","message_create":{"target":{"recipient_id":"42"},'
            b'"sender_id":"901","message_data":{"text":"balasan"}}}]}'
        ),
        count=0,
    ),
    Case(
        "a mention's GeoJSON coordinates [lon, lat] become lat/lon",
        signed(x("tweet__mention_with_coordinates.json")),
        kind="mention",
        text="@DKIJakarta jalan berlubang di sini",
        sender="42",
        external_id="tweet:1870000000000000001",
        coordinates=(-6.1754, 106.8272),
        attachments=[("https://pbs.twimg.com/media/Gabc.jpg", "image/jpeg")],
    ),
    Case(
        "the deprecated geo [lat, lon] is used, the right way round, without coordinates",
        signed(x("tweet__mention_with_geo_only.json")),
        kind="mention",
        coordinates=(-6.2297, 106.6894),
        check=lambda ms: ms[0].received_at == datetime(2026, 1, 1, 0, 10, tzinfo=UTC),
    ),
    Case(
        "a truncated mention is read from extended_tweet; its place is a hint, not a geo-tag",
        signed(x("tweet__extended_with_place.json")),
        kind="mention",
        external_id="tweet:1870000000000000003",
        location_hint="Kebayoran Baru, Indonesia",
        attachments=[
            ("https://video.twimg.com/ext_tw_video/78/pu/vid/1280x720/high.mp4", "video/mp4")
        ],
        check=_extended,
    ),
    Case("a retweet is not a new mention", signed(x("tweet__retweet.json")), count=0),
    Case("our own tweet is dropped", signed(x("tweet__own.json")), count=0),
    Case("a like is acknowledged and creates nothing", signed(x("favorite__event.json")), count=0),
    Case(
        "an XAA dm.received has the same external id as the AAA event",
        signed(x("xaa__dm_received.json")),
        external_id="dm:1777",
        text="Sampah menumpuk di pasar Senen",
        group_key="dm:twitter:900:42",
        extra={"event_uuid": "5f2b7c1e-0000-4000-8000-000000000001"},
    ),
    Case(
        "an XAA post.mention.create maps the v2 Post",
        signed(x("xaa__post_mention.json")),
        kind="mention",
        external_id="tweet:1870000000000000001",
        sender="42",
        coordinates=(-6.1754, 106.8272),
        extra={"event_type": "post.mention.create"},
    ),
    Case("an unsigned request is refused", wire("POST", URL, x("dm__text.json")), 401),
    Case(
        "a signature made with another secret is refused",
        signed(x("dm__text.json"), secret="not-our-secret"),
        status=401,
    ),
    Case(
        "a hex signature (Meta's format) is refused",
        wire(
            "POST",
            URL,
            x("dm__text.json"),
            {
                "x-twitter-webhooks-signature": "sha256="
                + hmac.new(SECRET.encode(), x("dm__text.json"), hashlib.sha256).hexdigest()
            },
        ),
        status=401,
    ),
    Case("signed but not JSON is malformed", signed(b"for_user_id=900"), status=400),
    Case("neither AAA nor XAA is malformed", signed(b'{"hello": "world"}'), status=400),
    Case(
        "direct_message_events must be an array",
        signed(b'{"for_user_id":"900","direct_message_events":{"id":"1"}}'),
        status=400,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_twitter_webhook(case: Case) -> None:
    run_case(connector(), case)


def test_the_same_message_via_aaa_and_xaa_dedupes() -> None:
    aaa = connector().parse(signed(x("dm__text.json")), NOW)
    xaa = connector().parse(signed(x("xaa__dm_received.json")), NOW)
    assert [m.external_id for m in aaa] == [m.external_id for m in xaa] == ["dm:1777"]
    tweet_aaa = connector().parse(signed(x("tweet__mention_with_coordinates.json")), NOW)
    tweet_xaa = connector().parse(signed(x("xaa__post_mention.json")), NOW)
    assert tweet_aaa[0].external_id == tweet_xaa[0].external_id


def test_a_replayed_body_gives_the_same_messages() -> None:
    body = x("tweet__extended_with_place.json")
    assert connector().parse(signed(body), NOW) == connector().parse(signed(body), NOW)


def test_a_large_payload_of_fifty_dm_events_is_read_whole() -> None:
    event = json.loads(x("dm__text.json"))["direct_message_events"][0]
    events = [
        {**event, "id": str(5000 + i), "message_create": {**event["message_create"]}}
        for i in range(50)
    ]
    body = json.dumps({"for_user_id": OWN, "direct_message_events": events}).encode()
    messages = connector().parse(signed(body), NOW)
    assert len({m.external_id for m in messages}) == 50


def test_crc_answers_with_the_base64_hmac_of_the_token() -> None:
    response = connector().crc(wire("GET", f"{URL}?crc_token=Zm9vYmFy%2B%2F%3D"))
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), b"Zm9vYmFy+/=", hashlib.sha256).digest()
    ).decode()
    assert response.status == 200
    assert response.content_type == "application/json"
    assert json.loads(response.body) == {"response_token": f"sha256={expected}"}


def test_crc_without_a_token_is_malformed() -> None:
    with pytest.raises(MalformedPayload) as caught:
        connector().crc(wire("GET", URL))
    assert caught.value.status == 400


def test_twitter_is_answered_200_empty() -> None:
    assert connector().respond([], []).status == 200
    assert connector().respond([], []).body == b""


# --- polling mappings -------------------------------------------------------------------


def test_dm_events_from_polling_drop_our_sends_and_non_messages() -> None:
    response = json.loads(x("poll__dm_events.json"))
    messages = messages_from_dm_events(response, OWN, NOW)
    assert [m.external_id for m in messages] == ["dm:1781", "dm:1778"]
    first, photo = messages
    assert first.sender == first.sender.__class__(
        user_id="42", name="Warga Empat Dua", handle="warga42"
    )
    assert first.received_at == datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    assert first.group_key == "dm:twitter:900:42"
    assert [(a.url, a.content_type) for a in photo.attachments] == [
        ("https://pbs.twimg.com/dm_media/555.jpg", "image/jpeg")
    ]


def test_polled_and_webhook_dms_share_external_id_and_group() -> None:
    polled = messages_from_dm_events(json.loads(x("poll__dm_events.json")), OWN, NOW)
    pushed = connector().parse(signed(x("dm__with_photo.json")), NOW)
    assert polled[1].external_id == pushed[0].external_id == "dm:1778"
    assert polled[1].group_key == pushed[0].group_key


def test_mentions_from_polling_map_geo_place_and_drop_own_and_reposts() -> None:
    response = json.loads(x("poll__mentions.json"))
    messages = messages_from_mentions(response, OWN, NOW)
    assert [m.external_id for m in messages] == [
        "tweet:1870000000000000011",
        "tweet:1870000000000000010",
    ]
    place_only, with_point = messages
    assert place_only.coordinates is None
    assert place_only.location_hint == "Kebayoran Baru, Indonesia"
    assert [a.url for a in place_only.attachments] == ["https://pbs.twimg.com/media/Gpju.jpg"]
    assert with_point.coordinates is not None
    assert (with_point.coordinates.lat, with_point.coordinates.lon) == (-6.1370, 106.8650)
    assert with_point.in_reply_to == ("tweet:1870000000000000009",)
    assert all(m.kind == "mention" for m in messages)


@pytest.mark.parametrize(
    "response",
    [{"data": "nope"}, {"data": [1, 2]}, {"data": [{"id": {"x": 1}}]}, {"data": [{"id": "1"}]}],
)
def test_polling_mappings_raise_only_malformed(response: dict) -> None:
    for mapper in (messages_from_dm_events, messages_from_mentions):
        try:
            mapper(response, OWN, NOW)
        except MalformedPayload:
            pass


# --- rate budget ------------------------------------------------------------------------


def test_rate_budget_allows_fifteen_calls_per_fifteen_minutes() -> None:
    budget = RateBudget()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    calls: list[float] = []
    for i in range(15):
        now = start + timedelta(seconds=10 * i)
        assert budget.allowed(calls, now)
        calls = budget.record(calls, now)
    later = start + timedelta(seconds=150)
    assert not budget.allowed(calls, later)
    assert budget.next_allowed_at(calls, later) == start + timedelta(minutes=15)
    assert budget.allowed(calls, start + timedelta(minutes=15, seconds=1))
    assert len(budget.recent(calls, start + timedelta(minutes=16))) == 14 - 6
    json.dumps(calls)  # persisted as a plain list


def test_rate_budget_forgets_calls_outside_the_window() -> None:
    budget = RateBudget(limit=2, window=timedelta(seconds=60))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    old = [now.timestamp() - 120, now.timestamp() - 61]
    assert budget.recent(old, now) == []
    assert budget.record(old, now) == [now.timestamp()]


# --- the poller, through tweepy with a mounted transport ---------------------------------


def poller(fake: FakeTwitterApi) -> TwitterPoller:
    client = tweepy.Client(
        consumer_key="ck",
        consumer_secret="cs",
        access_token="at",
        access_token_secret="ats",
        return_type=dict,
        wait_on_rate_limit=False,
    )
    fake.install(client)
    return TwitterPoller(client, OWN, clock=lambda: NOW)


def loaded_fake(**kwargs: object) -> FakeTwitterApi:
    fake = FakeTwitterApi(OWN, **kwargs)  # type: ignore[arg-type]
    fake.load(json.loads(x("poll__dm_events.json")), "dm")
    fake.load(json.loads(x("poll__mentions.json")), "mention")
    return fake


def test_fetch_dms_asks_for_the_fields_it_maps() -> None:
    fake = loaded_fake()
    messages, state = poller(fake).fetch_dms(None)
    assert [m.external_id for m in messages] == ["dm:1781", "dm:1778"]
    assert messages[0].sender.handle == "warga42"
    assert messages[1].attachments[0].url == "https://pbs.twimg.com/dm_media/555.jpg"
    assert state == {"newest_id": "1781", "resume_token": None, "resume_newest": None}
    sent = fake.requests[0]
    assert (sent.method, sent.path) == ("GET", "/2/dm_events")
    assert sent.params["max_results"] == "100"
    assert {"sender_id", "created_at", "attachments"} <= set(
        sent.params["dm_event.fields"].split(",")
    )
    assert set(sent.params["expansions"].split(",")) == {"sender_id", "attachments.media_keys"}
    assert "pagination_token" not in sent.params
    assert sent.authorization.startswith("OAuth ")


def test_fetch_dms_walks_pages_one_call_at_a_time_then_stops_at_known_events() -> None:
    fake = loaded_fake()
    poll = poller(fake)
    first, state = poll.fetch_dms(None, max_results=2)
    assert [m.external_id for m in first] == ["dm:1781"]  # 1780 is ours
    assert state["resume_token"] and state["newest_id"] is None
    second, state = poll.fetch_dms(state, max_results=2)
    assert [m.external_id for m in second] == ["dm:1778"]  # 1779 is not a MessageCreate
    assert fake.requests[1].params["pagination_token"] == "page_2"  # the fake's next_token
    assert state == {"newest_id": "1781", "resume_token": None, "resume_newest": None}
    fake.add_dm_event(
        {"id": "1790", "event_type": "MessageCreate", "text": "Baru", "sender_id": "42",
         "created_at": "2026-01-01T03:00:00.000Z", "dm_conversation_id": "42-900"}
    )  # fmt: skip
    third, state = poll.fetch_dms(state, max_results=2)
    assert [m.external_id for m in third] == ["dm:1790"]  # stops at the known 1781
    assert state["newest_id"] == "1790" and state["resume_token"] is None


def test_fetch_mentions_sends_since_id_and_returns_newest_id() -> None:
    fake = loaded_fake()
    messages, newest = poller(fake).fetch_mentions("1870000000000000009")
    assert [m.external_id for m in messages] == [
        "tweet:1870000000000000011",
        "tweet:1870000000000000010",
    ]
    assert messages[0].location_hint == "Kebayoran Baru, Indonesia"
    assert newest == "1870000000000000011"
    sent = fake.requests[0]
    assert sent.path == f"/2/users/{OWN}/mentions"
    assert sent.params["since_id"] == "1870000000000000009"
    assert sent.params["max_results"] == "100"
    assert {"geo.place_id", "author_id"} <= set(sent.params["expansions"].split(","))
    assert "geo" in sent.params["tweet.fields"].split(",")


def test_fetch_mentions_follows_pagination_and_keeps_since_id_when_nothing_new() -> None:
    fake = loaded_fake()
    messages, newest = poller(fake).fetch_mentions(None, max_results=5)
    assert len(messages) == 2 and newest == "1870000000000000011"
    messages, newest = poller(fake).fetch_mentions("1870000000000000011")
    assert messages == [] and newest == "1870000000000000011"


def test_a_429_becomes_rate_limited_with_the_reset_time() -> None:
    clock_now = NOW.timestamp()
    fake = loaded_fake(dm_limit=15, clock=lambda: clock_now)
    poll = poller(fake)
    for _ in range(15):
        poll.fetch_dms(None)
    with pytest.raises(RateLimited) as caught:
        poll.fetch_dms(None)
    assert caught.value.reset_at == datetime.fromtimestamp(int(clock_now) + 900, UTC)
    assert caught.value.status == 429
    fake.throttle_next("/2/users/")
    with pytest.raises(RateLimited):
        poll.fetch_mentions(None)


def test_other_api_failures_are_typed() -> None:
    fake = loaded_fake()
    with pytest.raises(TwitterApiError) as caught:
        poller(fake).fetch_mentions(None, max_results=500)  # the API wants 5..100
    assert caught.value.http_status == 400
    assert not isinstance(caught.value, RateLimited)


def test_the_fake_records_dm_acks_sent_through_tweepy() -> None:
    fake = FakeTwitterApi(OWN)
    client = tweepy.Client(
        consumer_key="ck", consumer_secret="cs", access_token="at", access_token_secret="ats",
        return_type=dict,
    )  # fmt: skip
    fake.install(client)
    answer = client.create_direct_message(participant_id="42", text="Laporan diterima: KNL-7Q4M")
    assert answer["data"]["dm_conversation_id"] == "42-900"
    event_id = answer["data"]["dm_event_id"]
    assert fake.sent_dms == [
        {"participant_id": "42", "text": "Laporan diterima: KNL-7Q4M", "id": event_id}
    ]
    with pytest.raises(tweepy.BadRequest):
        client.create_direct_message(participant_id="42", text="x" * 10001)


def test_the_fake_refuses_requests_without_credentials() -> None:
    fake = FakeTwitterApi(OWN)
    client = tweepy.Client(bearer_token=None, return_type=dict)
    fake.install(client)
    fake_session = client.session
    response = fake_session.get("https://api.twitter.com/2/dm_events")
    assert response.status_code == 401


# --- nothing but ConnectorError, whatever arrives -----------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            ["for_user_id", "direct_message_events", "tweet_create_events", "users", "type",
             "id", "id_str", "message_create", "sender_id", "target", "recipient_id",
             "message_data", "text", "attachment", "media", "user", "coordinates", "geo",
             "place", "full_name", "extended_tweet", "truncated", "full_text", "data",
             "event_type", "payload", "includes", "filter", "user_id", "created_timestamp",
             "created_at", "timestamp_ms", "extended_entities", "retweeted_status"]
        ) | st.text(max_size=5),
        inner,
        max_size=6,
    ),
    max_leaves=30,
)  # fmt: skip
_aaa = st.fixed_dictionaries(
    {"for_user_id": st.just("900"), "direct_message_events": _json, "tweet_create_events": _json}
)
_xaa = st.fixed_dictionaries(
    {"data": st.fixed_dictionaries(
        {"event_type": st.sampled_from(["dm.received", "post.mention.create"]),
         "payload": _json, "includes": _json, "filter": _json}
    )}
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=200), *(s.map(json.dumps).map(str.encode) for s in (_json, _aaa, _xaa))
    )
)
def test_any_body_yields_messages_or_a_connector_error(body: bytes) -> None:
    request = signed(body)
    try:
        connector().verify(request)
        for message in connector().parse(request, NOW):
            json.dumps(message.to_json())
    except ConnectorError:
        pass


@settings(max_examples=200, deadline=None)
@given(_json)
def test_any_polled_json_yields_messages_or_malformed(response: object) -> None:
    for mapper in (messages_from_dm_events, messages_from_mentions):
        try:
            mapper(response, OWN, NOW)  # type: ignore[arg-type]
        except MalformedPayload:
            pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_fixtures("twitter"))
def test_recorded_payloads_with_odd_values_yield_messages_or_a_connector_error(
    body: bytes,
) -> None:
    try:
        for message in connector().parse(signed(body), NOW):
            json.dumps(message.to_json())
    except ConnectorError:
        pass
    document = json.loads(body)
    for mapper in (messages_from_dm_events, messages_from_mentions):
        try:
            mapper(document, OWN, NOW)
        except MalformedPayload:
            pass
