"""Pushed client settings reach publishers without fallback (issue 20):
a real ferryd on an embedded store, `Admin.SetClientSettings` at runtime
(what `ferry client-settings set` calls), the node path's batches change,
an option the application set is not overridden. Threads and asyncio."""
import asyncio
import uuid

import ferry
import ferry.aio

from conftest import Ferryd, create_topic
from helpers import batches_for, set_client_settings, wait_until


def start_node(tmp_path):
    name = "py-settings-" + uuid.uuid4().hex[:6]
    return Ferryd(None, tmp_path, name, store=tmp_path / "store",
                  settings=["client.refresh_interval=1s"]).start()


def test_publisher_without_fallback_follows_a_setting_pushed_at_runtime(tmp_path):
    node = start_node(tmp_path)
    topic = create_topic(node.endpoint, "pyset-" + uuid.uuid4().hex[:8], 1)
    pushed = ferry.Publisher([node.endpoint])
    own = ferry.Publisher([node.endpoint], max_batch_messages=500)
    try:
        assert wait_until(lambda: pushed.stats().config_fetched)
        assert pushed.stats().max_batch_messages == 500        # the SDK default
        assert batches_for(pushed, topic, 200) <= 10

        set_client_settings(node.endpoint, max_batch_messages=5)
        # Refreshed within client.refresh_interval (1 s).
        assert wait_until(lambda: pushed.stats().max_batch_messages == 5)
        assert batches_for(pushed, topic, 200) >= 40           # at most 5 a batch
        assert wait_until(lambda: own.stats().config_fetched)
        assert own.stats().max_batch_messages == 500           # the application's own wins
        assert batches_for(own, topic, 200) <= 10
    finally:
        pushed.close(10)
        own.close(10)
        node.stop()


def test_asyncio_publisher_follows_a_setting_pushed_at_runtime(tmp_path):
    node = start_node(tmp_path)
    topic = create_topic(node.endpoint, "pyset-" + uuid.uuid4().hex[:8], 1)

    async def batches(publisher, count):
        before = publisher.stats().node_batches
        await asyncio.gather(*(publisher.publish(topic, b"m-%d" % i) for i in range(count)))
        return publisher.stats().node_batches - before

    async def run():
        async with ferry.aio.Publisher([node.endpoint]) as publisher:
            assert await batches(publisher, 200) <= 10          # starts the follower too
            set_client_settings(node.endpoint, max_batch_messages=5)
            for _ in range(200):
                if publisher.stats().max_batch_messages == 5:
                    break
                await asyncio.sleep(0.05)
            assert publisher.stats().config_fetched
            assert publisher.stats().max_batch_messages == 5
            assert await batches(publisher, 200) >= 40

    try:
        asyncio.run(run())
    finally:
        node.stop()
