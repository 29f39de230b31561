// Copies the wire contract (the repository's proto/ferry/v1/*.proto, or
// $FERRY_PROTO_DIR) into the package, where src/wire.ts loads it at run time.
'use strict';
const fs = require('fs');
const path = require('path');

const from = path.join(process.env.FERRY_PROTO_DIR || path.join(__dirname, '..', '..', '..', 'proto'), 'ferry', 'v1');
const to = path.join(__dirname, '..', 'proto', 'ferry', 'v1');
if (!fs.existsSync(from)) {
  // An installed tarball already carries proto/; only a checkout copies.
  if (fs.existsSync(to)) process.exit(0);
  console.error(`copy-protos: ${from} not found (set FERRY_PROTO_DIR)`);
  process.exit(1);
}
fs.mkdirSync(to, { recursive: true });
for (const name of fs.readdirSync(from).filter((n) => n.endsWith('.proto'))) {
  fs.copyFileSync(path.join(from, name), path.join(to, name));
}
