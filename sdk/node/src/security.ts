// TLS and token credentials for Publisher and Subscriber, as the C++ SDK's
// ferry::client::Security and the Python SDK's ferry.credentials:
//
//   const publisher = new Publisher(['ferry-1:7400'], {
//     credentials: credentials({ caFile: '/etc/ferry/ca.pem', token: process.env.FERRY_TOKEN }),
//   });
import * as fs from 'fs';
import * as grpc from '@grpc/grpc-js';
import { FerryError, Status } from './errors';

/** Files are PEM, read once by credentials(). Everything unset: plain text (nodes on loopback only). */
export interface Security {
  /** TLS with the system's CAs; implied by any file below. */
  tls?: boolean;
  /** CAs the nodes' certificates must chain to; unset: the system's. */
  caFile?: string;
  /** Client certificate and its key, for nodes with mutual TLS. */
  certFile?: string;
  keyFile?: string;
  /** Sent as "authorization: Bearer <token>" on every call; needs TLS. */
  token?: string;
}

function invalid(reason: string): FerryError {
  return new FerryError(Status.INVALID_ARGUMENT, reason, { retryable: false });
}

function readPem(what: string, path: string | undefined): Buffer | null {
  if (!path) return null;
  try {
    return fs.readFileSync(path);
  } catch {
    throw invalid(`${what} "${path}": cannot read (missing or not readable)`);
  }
}

/**
 * Channel credentials for the `credentials` option of Publisher and
 * Subscriber. Throws a FerryError (INVALID_ARGUMENT) for a token without
 * TLS, a certificate without its key (or the reverse) and an unreadable file.
 */
export function credentials(security: Security = {}): grpc.ChannelCredentials {
  const { caFile, certFile, keyFile, token } = security;
  if (!security.tls && !caFile && !certFile && !keyFile) {
    if (token) {
      throw invalid("a token needs TLS (give the CA file of the node's certificate): tokens never travel in clear text");
    }
    return grpc.credentials.createInsecure();
  }
  if (!certFile !== !keyFile) throw invalid('a client certificate needs its key file and a key its certificate file');
  const tls = grpc.credentials.createSsl(readPem('CA file', caFile), readPem('key file', keyFile),
    readPem('certificate file', certFile));
  if (!token) return tls;
  const bearer = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    callback(null, metadata);
  });
  return grpc.credentials.combineChannelCredentials(tls, bearer);
}
