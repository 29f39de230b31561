// One benchmark client of bench/sdk_bench: publishes or consumes --messages
// messages of --size bytes with the Ferry Node SDK (--client ferry, through
// ferryd; sdk/node must be built: npm ci there) or with kafkajs (--client
// kafkajs, straight to Kafka), and prints one JSON line: messages, seconds of
// the measured window and the process's own user+system CPU seconds in it
// (process.cpuUsage, i.e. getrusage).
'use strict';
const path = require('path');
const { parseArgs } = require('util');

const { values: args } = parseArgs({
  options: {
    client: { type: 'string', default: 'ferry' },
    mode: { type: 'string', default: 'publish' },
    target: { type: 'string', default: '127.0.0.1:7400' },
    topic: { type: 'string', default: 'bench' },
    group: { type: 'string', default: 'bench' },
    size: { type: 'string', default: '1024' },
    messages: { type: 'string', default: '100000' },
  },
});
const size = Number(args.size);
const count = Number(args.messages);
const value = Buffer.alloc(size, 120);
const key = (i) => `k${i % 1000}`;
// kafkajs has no per-message producer queue: an application hands send() arrays.
const KAFKAJS_BATCH = 500;

function start() {
  const wall = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  return (messages) => {
    const used = process.cpuUsage(cpu);
    return {
      messages,
      seconds: Number(process.hrtime.bigint() - wall) / 1e9,
      cpu: (used.user + used.system) / 1e6,
    };
  };
}

function ferry() {
  return require(path.resolve(__dirname, '../../../sdk/node'));
}

async function ferryPublish() {
  const { Publisher } = ferry();
  const publisher = new Publisher([args.target]);
  const stop = start();
  const results = [];
  for (let i = 0; i < count; i++) results.push(publisher.publish(args.topic, value, { key: key(i) }));
  await Promise.all(results);
  const result = stop(count);
  await publisher.close();
  return result;
}

async function ferryConsume() {
  const { Subscriber } = ferry();
  const subscriber = new Subscriber([args.target], args.group, [args.topic],
    { start: 'earliest', maxOutstandingMessages: 5000, maxOutstandingBytes: 64 << 20 });
  const stop = start();
  let received = 0;
  for await (const message of subscriber) {
    message.ack();
    if (++received === count) break; // leaving the loop closes the subscriber
  }
  return stop(received);
}

function kafka() {
  const { Kafka, logLevel } = require('kafkajs');
  return new Kafka({ clientId: 'sdk-bench', brokers: [args.target], logLevel: logLevel.NOTHING });
}

async function kafkajsPublish() {
  // idempotent requires acks=-1 (all) and at most one request in flight.
  const producer = kafka().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const stop = start();
  for (let i = 0; i < count; i += KAFKAJS_BATCH) {
    const messages = [];
    for (let j = i; j < Math.min(count, i + KAFKAJS_BATCH); j++) messages.push({ key: key(j), value });
    await producer.send({ topic: args.topic, acks: -1, messages });
  }
  const result = stop(count);
  await producer.disconnect();
  return result;
}

async function kafkajsConsume() {
  const consumer = kafka().consumer({ groupId: args.group });
  await consumer.connect();
  const stop = start();
  await consumer.subscribe({ topics: [args.topic], fromBeginning: true });
  let received = 0;
  let result;
  await new Promise((resolve) => {
    consumer.run({
      eachMessage: async () => {
        if (++received === count) {
          result = stop(received);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return result;
}

const runs = {
  'ferry/publish': ferryPublish, 'ferry/consume': ferryConsume,
  'kafkajs/publish': kafkajsPublish, 'kafkajs/consume': kafkajsConsume,
};
const run = runs[`${args.client}/${args.mode}`];
if (!run) {
  console.error(`unknown --client/--mode ${args.client}/${args.mode}`);
  process.exit(2);
}
run().then((result) => {
  console.log(JSON.stringify(result));
  process.exit(0);
}, (error) => {
  console.error(error);
  process.exit(1);
});
