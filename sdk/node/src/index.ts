// ferry-client: the Node.js SDK for Ferry. See README.md.
export { Publisher, PublisherOptions, PublishResult } from './publisher';
export { Settings } from './client-settings';
export { Subscriber, SubscriberOptions, SubscriberStats, Ordering } from './subscriber';
export { Message } from './message';
export { Security, credentials } from './security';
export { FerryError, Status } from './errors';
export { Bytes, Headers, PublishOptions } from './convert';
export type { Handler } from './handler-dispatch';
