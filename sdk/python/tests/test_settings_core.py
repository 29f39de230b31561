"""The pushed-settings follower's decisions (ConfigSchedule as every
publisher without fallback uses it, and the publisher core's reconnect
signal), driven directly: no server, no threads."""
import grpc
import pytest
from google.protobuf import duration_pb2

from ferry._client_config import ConfigSchedule, PushedSettings
from ferry._publisher_core import PublisherCore
from ferry.v1 import admin_pb2

from test_core import FakeRpcError, answer, publish, publisher


def response(max_batch_messages=0, refresh=None):
    r = admin_pb2.GetClientConfigResponse(
        settings=admin_pb2.ClientSettings(max_batch_messages=max_batch_messages))
    if refresh is not None:
        r.refresh_interval.CopyFrom(duration_pb2.Duration(seconds=refresh))
    return r


def test_follower_fetches_at_start_then_every_refresh_interval_the_node_names():
    schedule = ConfigSchedule()
    assert schedule.due(0.0)                                   # at start
    config = schedule.answered(response(7, refresh=5), 0.0)
    assert config.settings.max_batch_messages == 7
    assert not schedule.due(4.9) and schedule.wait(4.0) == 1.0
    assert schedule.due(5.0)
    schedule.answered(response(refresh=0), 5.0)               # unnamed: the last one
    assert schedule.wait(5.0) == 5.0


def test_follower_asks_again_within_a_second_while_no_node_answers():
    schedule = ConfigSchedule(refresh=30.0)
    schedule.answered(response(), 0.0)
    assert schedule.failed(grpc.StatusCode.UNAVAILABLE, "refused", 30.0) is None
    assert schedule.wait(30.0) == 1.0                          # not another 30 s
    assert schedule.failed(grpc.StatusCode.DEADLINE_EXCEEDED, "slow", 31.0) is None
    assert schedule.due(32.0)


def test_follower_fetches_on_reconnect_but_not_twice_within_the_gap():
    schedule = ConfigSchedule(refresh=30.0)
    schedule.answered(response(), 10.0)
    schedule.reconnected(10.2)                                 # within the gap: at its end
    assert schedule.wait(10.2) == pytest.approx(0.8)
    schedule.answered(response(), 11.0)
    schedule.reconnected(20.0)                                 # after the gap: at once
    assert schedule.due(20.0)


def test_a_nodes_error_is_logged_once_and_asked_again_only_after_the_refresh():
    schedule = ConfigSchedule(refresh=30.0)
    first = schedule.failed(grpc.StatusCode.UNIMPLEMENTED, "unknown method", 0.0)
    assert "older ferryd" in first
    assert schedule.wait(0.0) == 30.0
    assert schedule.failed(grpc.StatusCode.UNIMPLEMENTED, "unknown method", 30.0) is None
    denied = schedule.failed(grpc.StatusCode.PERMISSION_DENIED, "describe cluster", 60.0)
    assert denied == "ferry: client configuration: describe cluster"
    assert schedule.failed(grpc.StatusCode.PERMISSION_DENIED, "describe cluster", 90.0) is None
    schedule.answered(response(), 120.0)                       # said again after a success
    assert schedule.failed(grpc.StatusCode.PERMISSION_DENIED, "describe cluster", 150.0)


def test_publisher_core_signals_a_reconnect_only_after_a_node_failure():
    core = PublisherCore(["a:1"], max_batch_messages=None, max_batch_bytes=None, linger=None,
                         max_outstanding_bytes=1 << 20, request_timeout=None,
                         delivery_timeout=None, retry_backoff=(0.1, 1.0), close_timeout=1.0,
                         max_inflight_batches=32)
    publish(core, "t", b"v", 0.0)
    (batch,), _ = core.step(0.0)
    core.on_response(batch, answer(batch), 0.0)
    assert not core.reconnected                                # healthy all along
    publish(core, "t", b"w", 0.0)
    (batch,), _ = core.step(0.0)
    core.on_call_error(batch, FakeRpcError(grpc.StatusCode.UNAVAILABLE), 0.0)
    (retry,), _ = core.step(1.0)
    core.on_response(retry, answer(retry), 1.0)
    assert core.reconnected


def test_applied_settings_reach_the_running_batcher_but_not_what_the_application_set():
    core = publisher(max_batch_messages=50, linger=None, delivery_timeout=None)
    core.apply_settings(PushedSettings(linger=0.04, max_batch_messages=5,
                                       delivery_timeout=9.0))
    assert core.batcher.linger == 0.04 and core.delivery_timeout == 9.0
    assert core.batcher.max_batch_messages == 50               # the application's own
    core.apply_settings(None)                                  # withdrawn: the defaults
    assert core.batcher.linger == 0.005 and core.delivery_timeout == 120.0
