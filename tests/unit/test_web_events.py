"""The dashboard's event hub without Redis: naming, encoding, replay after a reconnect, slow browsers."""

from __future__ import annotations

import asyncio
import json

from vsmmon.names import ALERTS_CHANNEL, HEALTH_CHANNEL
from vsmmon.web.events import Event, EventHub, Subscriber, event_name


def test_event_names_follow_the_channel_and_the_alert_type() -> None:
    assert event_name(HEALTH_CHANNEL, '{"viability": 0.9}') == "health"
    assert event_name(ALERTS_CHANNEL, json.dumps({"type": "control_action", "data": {}})) == "control_action"
    assert event_name(ALERTS_CHANNEL, json.dumps({"type": "policy_decision", "data": {}})) == "policy_decision"
    assert event_name(ALERTS_CHANNEL, json.dumps({"type": "something else"})) == "alert"
    assert event_name(ALERTS_CHANNEL, "not json") == "alert"


def test_an_event_is_one_sse_block_even_with_newlines_in_its_data() -> None:
    assert Event("e-1", "health", '{"a": 1}').encode() == b'id: e-1\nevent: health\ndata: {"a": 1}\n\n'
    assert Event("e-2", "alert", "x\ny").encode() == b"id: e-2\nevent: alert\ndata: x\ndata: y\n\n"


def drain(sub: Subscriber) -> list[Event | None]:
    out = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait())
    return out


def test_fan_out_replay_and_dropping_a_slow_browser() -> None:
    async def scenario() -> None:
        hub = EventHub("redis://127.0.0.1:1/0", queue_size=3, replay=4)
        hub._task = asyncio.get_running_loop().create_future()  # type: ignore[assignment]  # no Redis here
        fast, slow = hub.subscribe(), hub.subscribe()
        first = hub.publish(HEALTH_CHANNEL, '{"n": 1}')
        assert [e.data for e in drain(fast)] == ['{"n": 1}']  # type: ignore[union-attr]
        for n in range(2, 5):
            hub.publish(HEALTH_CHANNEL, f'{{"n": {n}}}')
            drain(fast)
        # `slow` never read: three queued, the fourth found it full, so it was ended and let go
        assert drain(slow) == [None]
        assert hub.clients == 1
        # a reconnect with the first event's id gets the three after it (the replay keeps four)
        back = hub.subscribe(first.id)
        assert [e.data for e in drain(back)] == ['{"n": 2}', '{"n": 3}', '{"n": 4}']  # type: ignore[union-attr]
        # an id from another process (or run) replays nothing
        assert drain(hub.subscribe("deadbeef-1")) == []
        hub._task = None
        await hub.close()
        assert drain(fast) == [None]

    asyncio.run(scenario())
