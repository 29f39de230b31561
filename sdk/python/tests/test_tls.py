"""The SDK against a ferryd with mutual TLS; certificates from a throwaway CA
made with the openssl CLI when the module runs (no key is committed)."""
import subprocess

import pytest

import ferry
from conftest import Ferryd, create_topic, ferryd_binary, unique


def _openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _issue(dir, name, ca, sans=None):
    cert, key, csr, ext = (dir / (name + s) for s in (".pem", ".key", ".csr", ".ext"))
    ext.write_text("subjectAltName=" + sans + "\n" if sans else "")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-subj", "/CN=" + name, "-keyout", str(key), "-out", str(csr))
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(ext))
    return str(cert), str(key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    dir = tmp_path_factory.mktemp("pki")
    ca = (dir / "ca.pem", dir / "ca.key")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-days", "2", "-subj", "/CN=py test CA", "-keyout", str(ca[1]), "-out", str(ca[0]))
    return {"ca": str(ca[0]),
            "server": _issue(dir, "ferryd", ca, "DNS:localhost,IP:127.0.0.1"),
            "client": _issue(dir, "tenant-a", ca)}


@pytest.fixture(scope="module")
def tls_node(pki, tmp_path_factory):
    if not ferryd_binary().exists():
        pytest.fail("ferryd not built: run scripts/build")
    work = tmp_path_factory.mktemp("ferryd-tls")
    cert, key = pki["server"]
    tls = ["--set", "listen.tls.cert=" + cert, "--set", "listen.tls.key=" + key,
           "--set", "listen.tls.client_ca=" + pki["ca"]]
    proc = Ferryd(None, work, "py-tls", store=work / "store", extra_args=tls,
                  https=(pki["ca"],) + pki["client"]).start()
    yield proc
    proc.stop()


def test_publish_and_consume_over_mutual_tls(pki, tls_node):
    creds = ferry.credentials(ca_file=pki["ca"], cert_file=pki["client"][0],
                              key_file=pki["client"][1])
    topic = create_topic(tls_node.endpoint, unique("tls"), 1, credentials=creds)
    with ferry.Publisher([tls_node.endpoint], credentials=creds) as pub:
        assert pub.publish(topic, b"over tls").result(30).offset >= 0
    with ferry.Subscriber([tls_node.endpoint], unique("g"), [topic], start="earliest",
                          credentials=creds) as sub:
        assert sub.native == ferry.native_available()  # the C++ SDK's TLS when native
        m = sub.receive(timeout=30)
        assert m is not None and m.value == b"over tls"
        m.ack()


def test_a_client_without_its_certificate_is_refused(pki, tls_node):
    creds = ferry.credentials(ca_file=pki["ca"])
    with ferry.Publisher([tls_node.endpoint], credentials=creds, delivery_timeout=2,
                         retry_backoff=(0.05, 0.1)) as pub:
        with pytest.raises(ferry.Unavailable):
            pub.publish(unique("tls"), b"x").result(10)


def test_credentials_name_bad_files():
    with pytest.raises(ValueError, match="CA file '/nonexistent/ca.pem': cannot read"):
        ferry.credentials(ca_file="/nonexistent/ca.pem")
    with pytest.raises(ValueError, match="needs its key file"):
        ferry.credentials(cert_file="/c.pem")
