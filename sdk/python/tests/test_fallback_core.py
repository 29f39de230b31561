"""The I/O-free parts of fallback publishing (FallbackCore, FallbackRouter,
ConfigSchedule, the Java partitioner, pushed settings), driven directly: no
server, no threads; time is a plain number."""
from google.protobuf import duration_pb2

import ferry
from ferry._client_config import (ClientConfig, ConfigSchedule, PushedSettings, TopicTarget,
                                  config_from_proto, java_partition, murmur2)
from ferry._fallback_core import DIRECT, FERRY, FallbackCore, FallbackRouter
from ferry._publisher_core import PublisherCore
from ferry.errors import DeadlineExceeded, NotFound
from ferry.v1 import admin_pb2, publisher_pb2


def test_murmur2_matches_kafkas_utils_murmur2():
    # Values of org.apache.kafka.common.utils.Utils.murmur2 on UTF-8 strings.
    known = {"1": -1993445489, "12": 126087238, "123": -267702483,
             "1234": -1614185708, "12345": -1188365604}
    assert {k: murmur2(k.encode()) for k in known} == known


def test_java_partition_is_positive_murmur2_modulo_partitions():
    assert java_partition(b"1", 3) == (-1993445489 & 0x7FFFFFFF) % 3
    assert java_partition(b"12345", 7) == (-1188365604 & 0x7FFFFFFF) % 7
    assert {java_partition(("key-%d" % i).encode(), 3) for i in range(12)} == {0, 1, 2}


def test_router_keeps_a_keys_order_across_a_switch_of_paths():
    router = FallbackRouter(fallback_after=2.0)
    assert router.admit(1, b"k", FERRY) == FERRY
    assert router.admit(2, b"k", FERRY) == FERRY          # joins its key's path
    router.node_unreachable(10.0)
    assert router.current(11.9) == FERRY and router.current(12.0) == DIRECT
    assert router.admit(3, b"k", DIRECT) is None          # waits for 1 and 2
    assert router.admit(4, b"other", DIRECT) == DIRECT    # nothing in flight: goes
    assert router.admit(5, None, DIRECT) == DIRECT        # unordered: never waits
    assert router.admit(6, b"k", DIRECT) is None          # behind 3
    assert router.finish(b"k", None, DIRECT) == (DIRECT, [])
    assert router.finish(b"k", None, DIRECT) == (DIRECT, [3, 6])
    router.node_answered()
    assert router.current(12.5) == FERRY
    assert router.admit(7, b"k", FERRY) is None           # back: waits for 3 and 6
    router.finish(b"k", None, FERRY)
    assert router.finish(b"k", None, FERRY) == (FERRY, [7])


def test_router_resends_a_failed_message_ahead_of_its_keys_later_ones():
    router = FallbackRouter(fallback_after=1.0)
    router.admit(1, b"k", FERRY)
    router.admit(2, b"k", FERRY)
    assert router.admit(3, b"k", DIRECT) is None
    assert router.finish(b"k", 2, DIRECT) == (DIRECT, [])  # 1 still in flight
    assert router.finish(b"k", 1, DIRECT) == (DIRECT, [1, 2, 3])
    assert router.waiting == 0


def message(core, topic, key=None):
    m = publisher_pb2.OutgoingMessage(value=b"v", key=key or b"", id="id-%d" % core.last_token)
    return core.add(topic, m, 10, key, object())


def config(fallback=True, partitions=3, linger=None):
    target = TopicTarget("main", "127.0.0.1:9092", {}, partitions, fallback)
    return ClientConfig({"t": target}, PushedSettings(linger=linger), 1.0)


def test_core_publishes_directly_after_fallback_after_and_counts_both_paths():
    warnings = []
    core = FallbackCore(2.0, PushedSettings(), warn=warnings.append)
    core.on_config(config())
    first = message(core, "t", b"k")
    sends, _ = core.step([first], [], [True], 0.0)
    assert sends == [(first, FERRY)]
    second = message(core, "t", b"k")
    sends, _ = core.step([second], [], [False], 1.0)
    assert sends == [(second, FERRY)] and not core.active   # not yet fallback_after
    third = message(core, "t", b"k")
    sends, _ = core.step([third], [], [False], 3.0)
    assert sends == [] and core.active                      # waits for 1 and 2
    # The first succeeded through a node; the second failed there: it goes
    # again directly, ahead of the third.
    _, resolved = core.step([], [(first.token, ferry.PublishResult("main", 0, 5))], [], 3.1)
    assert [(e.token, r.direct) for e, r in resolved] == [(first.token, False)]
    error = DeadlineExceeded("node gone", retryable=True)
    sends, resolved = core.step([], [(second.token, error)], [], 3.2)
    assert sends == [(second, DIRECT), (third, DIRECT)] and resolved == []
    assert core.direct_partition(second) == java_partition(b"k", 3)
    _, resolved = core.step([], [(second.token, ferry.PublishResult("main", 2, 9))], [], 3.3)
    assert resolved[0][1].direct and tuple(resolved[0][1]) == ("main", 2, 9)
    assert (core.ferry_messages, core.direct_messages) == (1, 1)
    assert core.take_report() == 1 and core.take_report() == 0
    assert not core.idle_direct()                           # the third is in flight
    core.step([], [(third.token, ferry.PublishResult("main", 2, 10))], [True], 4.0)
    assert core.idle_direct() and not core.entries and warnings == []


def test_core_falls_back_only_for_topics_whose_route_allows_it():
    warnings = []
    core = FallbackCore(1.0, PushedSettings(), warn=warnings.append)
    core.step([], [], [False], 0.0)
    assert core.wanted("t", 5.0) == FERRY                   # never fetched
    core.on_config(config(fallback=False))
    assert core.wanted("t", 5.0) == FERRY
    assert core.wanted("t", 6.0) == FERRY                   # warned once per topic
    assert len(warnings) == 1 and "no client configuration" in warnings[0]
    assert core.wanted("u", 6.0) == FERRY and "does not allow fallback" not in warnings[1]
    core.on_config(config(fallback=True))
    assert core.wanted("t", 7.0) == DIRECT


def test_core_does_not_resend_failures_the_nodes_are_not_to_blame_for():
    core = FallbackCore(1.0, PushedSettings(), warn=lambda _: None)
    core.on_config(config())
    entry = message(core, "t")
    core.step([entry], [], [False], 0.0)
    sends, resolved = core.step([], [(entry.token, NotFound("no topic"))], [], 5.0)
    assert sends == [] and isinstance(resolved[0][1], NotFound)


def test_core_close_fails_what_is_left():
    core = FallbackCore(1.0, PushedSettings(), warn=lambda _: None)
    entry = message(core, "t")
    core.step([entry], [], [], 0.0)
    (left, error), = core.close()
    assert left is entry and not error.retryable and core.flushed(core.last_token)


def test_schedule_fetches_at_start_on_refresh_on_reconnect_and_for_new_topics():
    schedule = ConfigSchedule(refresh=30.0)
    assert schedule.should_fetch(True, 0.0)                 # start
    schedule.fetched(ClientConfig({}, PushedSettings(), 5.0), 0.0)
    assert not schedule.should_fetch(True, 4.0)
    assert schedule.should_fetch(True, 5.0)                 # the node's interval
    schedule.fetched(None, 5.0)
    assert not schedule.should_fetch(False, 6.0)            # nobody to ask
    assert schedule.should_fetch(True, 6.5)                 # a node answers again
    schedule.fetched(None, 6.5)
    schedule.want_topic("t")
    assert schedule.should_fetch(True, 7.0) and schedule.request_topics() == ["t"]
    assert not schedule.should_fetch(True, 7.5)


def test_config_from_proto_withholds_fallback_without_bootstrap():
    response = admin_pb2.GetClientConfigResponse(
        topics=[admin_pb2.TopicClientConfig(topic="t", cluster="main", bootstrap="b:1",
                                            properties={"x": "y"}, partitions=3,
                                            fallback=True),
                admin_pb2.TopicClientConfig(topic="e", cluster="local", fallback=True)],
        settings=admin_pb2.ClientSettings(linger=duration_pb2.Duration(nanos=40_000_000),
                                          max_batch_messages=7),
        refresh_interval=duration_pb2.Duration(seconds=1))
    c = config_from_proto(response)
    assert c.topics["t"] == TopicTarget("main", "b:1", {"x": "y"}, 3, True)
    assert not c.topics["e"].fallback
    assert c.settings == PushedSettings(linger=0.04, max_batch_messages=7)
    assert c.refresh_interval == 1.0


def publisher_core(**explicit):
    options = dict(max_batch_messages=None, max_batch_bytes=None, linger=None,
                   max_outstanding_bytes=1 << 20, request_timeout=None, delivery_timeout=None,
                   retry_backoff=(0.1, 1.0), close_timeout=1.0, max_inflight_batches=32)
    options.update(explicit)
    return PublisherCore(["a:1"], **options)


def test_pushed_settings_replace_defaults_but_not_the_applications_own():
    core = publisher_core(max_batch_messages=50)
    assert core.settings() == PushedSettings(0.005, 50, 1 << 20, 30.0, 120.0)
    pushed = PushedSettings(linger=0.04, max_batch_messages=7, delivery_timeout=9.0)
    assert core.apply_settings(pushed) == PushedSettings(0.04, 50, 1 << 20, 30.0, 9.0)
    assert core.batcher.linger == 0.04 and core.delivery_timeout == 9.0
    core.apply_settings(None)                                # withdrawn: defaults again
    assert core.settings() == PushedSettings(0.005, 50, 1 << 20, 30.0, 120.0)
