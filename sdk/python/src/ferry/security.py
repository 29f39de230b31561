"""TLS and token credentials for Publisher and Subscriber (sync and aio).

    creds = ferry.credentials(ca_file="/etc/ferry/ca.pem", token=os.environ["FERRY_TOKEN"])
    publisher = ferry.Publisher(["ferry-1:7400"], credentials=creds)
"""
import grpc


def _read(path, what):
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ValueError(f"{what} {path!r}: cannot read ({e.strerror})") from None


def credentials(ca_file=None, cert_file=None, key_file=None, token=None):
    """Channel credentials for nodes with ``listen.tls``.

    ca_file: PEM CAs the nodes' certificates chain to (None: the system's).
    cert_file, key_file: client certificate and key, for mutual TLS.
    token: sent as ``authorization: Bearer <token>`` on every call.
    Raises ValueError naming an unreadable file or a certificate without key.
    """
    if (cert_file is None) != (key_file is None):
        raise ValueError("a client certificate needs its key file and a key its certificate file")
    creds = grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file, "CA file"),
        private_key=_read(key_file, "key file"),
        certificate_chain=_read(cert_file, "certificate file"))
    if token:
        creds = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(token))
    # What the native subscriber (ferry._native over the C++ SDK) builds its
    # own channels from; grpcio's credentials object cannot be read back.
    creds._ferry_security = (ca_file or "", cert_file or "", key_file or "", token or "")
    return creds
