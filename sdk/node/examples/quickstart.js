// Publishes ten messages and consumes them back.
//   node examples/quickstart.js [host:port ...]     (default 127.0.0.1:7400)
// Needs a running ferryd (scripts/run) and the topic:
//   build/src/cli/ferry topics create orders --partitions 3
const { Publisher, Subscriber, FerryError } = require('ferry-client');

async function main(endpoints, topic) {
  // Several endpoints: the SDK fails over between the nodes.
  const publisher = new Publisher(endpoints);
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) =>
    publisher.publish(topic, JSON.stringify({ total: i }), { key: `customer-${i % 3}`, headers: { source: 'example' } })));
  const last = results[results.length - 1];
  console.log(`published 10, last at ${last.cluster}/${last.partition}@${last.offset}`);
  await publisher.close();

  const subscriber = new Subscriber(endpoints, `example-${process.pid}`, [topic], { ordering: 'key', start: 'earliest' });
  let received = 0;
  for await (const message of subscriber) {
    console.log(message.partition, message.offset, message.key?.toString(), message.value.toString());
    message.ack(); // or message.nack({ delay: 5000 }) to get it again later
    if (++received === 10) break; // leaving the loop closes the subscriber
  }
}

const endpoints = process.argv.slice(2);
main(endpoints.length ? endpoints : ['127.0.0.1:7400'], process.env.TOPIC || 'orders').catch((e) => {
  console.error(e instanceof FerryError ? `${e.codeName} (retryable: ${e.retryable}): ${e.message}` : e);
  process.exit(1);
});
