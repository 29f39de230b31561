"""The asyncio flavour against a real ferryd."""
import asyncio
import collections

import pytest

import ferry
import ferry.aio
from conftest import unique


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def test_aio_publish_and_subscribe(node, topic_factory):
    topic = topic_factory()

    async def main():
        async with ferry.aio.Publisher([node.endpoint]) as pub:
            results = await asyncio.gather(*[
                pub.publish(topic, b"aio-%d" % i, key="k%d" % (i % 5)) for i in range(300)])
            assert all(r.cluster == "main" and r.offset >= 0 for r in results)
            later = [pub.publish_nowait(topic, b"aio-%d" % i, key="k%d" % (i % 5))
                     for i in range(300, 400)]
            assert await pub.flush(30)
            assert all(f.done() and not f.exception() for f in later)
            with pytest.raises(ferry.InvalidArgument):
                await pub.publish("", b"x")
            with pytest.raises(ferry.NotFound):
                await pub.publish(unique("no-such"), b"x")

        want = {b"aio-%d" % i for i in range(400)}
        seen = set()
        order = collections.defaultdict(list)
        async with ferry.aio.Subscriber([node.endpoint], unique("g"), [topic],
                                        start="earliest", ordering="key") as sub:
            async for m in sub:
                seen.add(m.value)
                order[m.key].append(int(m.value.split(b"-")[1]))
                m.ack()
                if want <= seen:
                    break
            stats = sub.stats()
        assert want <= seen
        for key, numbers in order.items():
            assert numbers == sorted(numbers), key
        assert stats.received >= 400

    run(main())


def test_aio_nack_redelivers(node, topic_factory):
    topic = topic_factory(partitions=1)

    async def main():
        async with ferry.aio.Publisher([node.endpoint]) as pub:
            await pub.publish(topic, b"again")
        async with ferry.aio.Subscriber([node.endpoint], unique("g"), [topic],
                                        start="earliest") as sub:
            first = await sub.receive(timeout=30)
            assert first is not None and first.delivery_attempt == 1
            first.nack()
            second = await sub.receive(timeout=30)
            assert second is not None and second.value == b"again"
            assert second.delivery_attempt == 2
            second.ack()

    run(main())


def test_aio_unknown_topic_is_fatal(node):
    async def main():
        sub = ferry.aio.Subscriber([node.endpoint], unique("g"), [unique("missing")])
        try:
            with pytest.raises(ferry.NotFound):
                await sub.receive(timeout=30)
        finally:
            await sub.close()

    run(main())
