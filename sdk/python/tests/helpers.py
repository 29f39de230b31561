import time
import urllib.request

import grpc

import ferry
from ferry.v1 import admin_pb2, admin_pb2_grpc


def consume_values(endpoints, topic, want, timeout=60.0, group=None, ordering="none",
                   stop_when=None):
    """Reads (and acks) messages until `want` values were seen (a set), or
    `stop_when(seen)` is true; returns the list of messages in arrival order."""
    import uuid
    group = group or "g-" + uuid.uuid4().hex[:8]
    messages = []
    seen = set()
    deadline = time.monotonic() + timeout
    with ferry.Subscriber(endpoints, group, [topic], start="earliest", ordering=ordering,
                          ack_deadline=10) as sub:
        while time.monotonic() < deadline:
            m = sub.receive(timeout=0.5)
            if m is None:
                continue
            messages.append(m)
            seen.add(m.value)
            m.ack()
            if stop_when is not None:
                if stop_when(seen):
                    break
            elif want <= seen:
                break
    return messages


def set_client_settings(endpoint, **settings):
    """Admin.SetClientSettings: what every node pushes to the SDKs from now on."""
    with grpc.insecure_channel(endpoint) as channel:
        return admin_pb2_grpc.AdminStub(channel).SetClientSettings(
            admin_pb2.SetClientSettingsRequest(settings=admin_pb2.ClientSettings(**settings)),
            timeout=10)


def batches_for(publisher, topic, count):
    """Node batch calls that publishing `count` keyless messages at once took."""
    before = publisher.stats().node_batches
    futures = [publisher.publish(topic, b"m-%d" % i) for i in range(count)]
    assert publisher.flush(30)
    assert all(not f.result(0).direct for f in futures)
    return publisher.stats().node_batches - before


def wait_until(condition, timeout=10.0):
    """Polls `condition()` every 0.05 s until true or `timeout`; returns it."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def group_counter(node, name, group):
    """The node's counter `name` summed over the series of `group` (its /metrics)."""
    url = "http://127.0.0.1:%d/metrics" % node.http_port
    with urllib.request.urlopen(url, timeout=5) as r:
        lines = r.read().decode().splitlines()
    label = 'group="%s"' % group
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines
               if line.startswith(name + "{") and label in line)
