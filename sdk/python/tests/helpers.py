import time

import ferry


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
