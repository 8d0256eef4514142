"""``tokenward certs dev`` and ``serve --compat-port`` as an operator runs them."""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import stat
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from cli.serving import Serve, run_serve
from e2e.processes import Cli, gateway_environment, new_encryption_keys
from tokenward._serving import free_port

pytestmark = pytest.mark.slow  # real `tokenward serve` processes

COMPAT = re.compile(r"compat\s+(https?)://127\.0\.0\.1:(\d+) ")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return gateway_environment(
        data_dir=tmp_path / "data",
        port=free_port(),
        sandbox_url="http://127.0.0.1:9",
        encryption_keys=new_encryption_keys(),
    )


def test_certs_dev_writes_a_ca_and_a_localhost_certificate(
    env: dict[str, str], tmp_path: Path
) -> None:
    cli = Cli(env=env, cwd=tmp_path)
    out = tmp_path / "certs"
    printed = cli.ok("certs", "dev", "--out", str(out)).stdout
    ca, cert, key = out / "ca.pem", out / "server.pem", out / "server-key.pem"
    for name in ("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"):
        assert f"export {name}={ca}" in printed
    assert f"export TOKENWARD_TLS_CERT={cert}" in printed
    assert f"export TOKENWARD_TLS_KEY={key}" in printed
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in printed

    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    authority = x509.load_pem_x509_certificate(ca.read_bytes())
    leaf.verify_directly_issued_by(authority)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert authority.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    doc = cli.json("certs", "dev", "--out", str(tmp_path / "again"))
    assert doc["clients"]["NODE_EXTRA_CA_CERTS"] == doc["ca"]
    assert doc["serve"]["TOKENWARD_TLS_KEY"] == doc["key"]

    (tmp_path / "a-file").write_text("x")
    line = cli.error_line("certs", "dev", "--out", str(tmp_path / "a-file"))
    assert "--out" in line
    assert "not a folder" in line


def test_serve_with_a_compat_port_then_a_clean_stop(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "TOKENWARD_COMPAT_PORT": "0"}
    served = Serve(env, tmp_path).start()
    try:
        found = COMPAT.search(served.stdout())
        assert found, served.output()
        scheme, port = found.group(1), int(found.group(2))
        assert scheme == "http"
        assert port not in (0, int(env["TOKENWARD_PORT"]))
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/healthz", trust_env=False).json()["status"] == "ok"
        with httpx.Client(http1=False, http2=True, trust_env=False) as h2c:
            answer = h2c.get(f"{url}/healthz")
        assert answer.http_version == "HTTP/2"
        assert answer.status_code == 200
    finally:
        code = served.stop()
    assert code in (0, -15), served.output()  # uvicorn re-raises the SIGTERM it handled
    assert "Traceback" not in served.stderr()
    assert "Application shutdown complete" in served.stderr()


def test_serve_with_tls_on_the_compat_port(env: dict[str, str], tmp_path: Path) -> None:
    cli = Cli(env=env, cwd=tmp_path)
    certs = cli.json("certs", "dev", "--out", str(tmp_path / "certs"))
    port = free_port()
    with Serve(
        env,
        tmp_path,
        "--compat-port",
        str(port),
        "--tls-cert",
        certs["cert"],
        "--tls-key",
        certs["key"],
    ) as served:
        found = COMPAT.search(served.stdout())
        assert found, served.output()
        assert found.group(1) == "https"
        context = ssl.create_default_context(cafile=certs["ca"])
        with httpx.Client(verify=context, http2=True, trust_env=False) as client:
            answer = client.get(f"https://localhost:{port}/healthz")
        assert answer.status_code == 200
        assert answer.http_version == "HTTP/2"  # ALPN h2, which gRPC over TLS needs


def test_refusals_are_one_line(env: dict[str, str], tmp_path: Path) -> None:
    cli = Cli(env=env, cwd=tmp_path)
    certs = cli.json("certs", "dev", "--out", str(tmp_path / "certs"))
    half = run_serve(env, "--compat-port", str(free_port()), "--tls-cert", certs["cert"])
    assert half.returncode == 1
    assert half.stderr.strip().splitlines() == [
        "error: TLS needs both a certificate and its key: --tls-key (TOKENWARD_TLS_KEY) is missing"
    ]
    swapped = run_serve(
        env,
        "--compat-port",
        str(free_port()),
        "--tls-cert",
        certs["key"],
        "--tls-key",
        certs["cert"],
    )
    assert swapped.returncode == 1
    assert "cannot load the TLS certificate" in swapped.stderr
    assert "Traceback" not in swapped.stderr

    same = run_serve(env, "--compat-port", env["TOKENWARD_PORT"])
    assert same.returncode == 1
    assert "the compatibility port must differ from the main port" in same.stderr

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        refused = run_serve(env, "--compat-port", str(taken))
    assert refused.returncode == 1
    assert f"port {taken} on 127.0.0.1 is already in use" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.redis
def test_every_worker_serves_the_compat_port(
    env: dict[str, str], tmp_path: Path, redis_server_url: str, redis_prefix: str
) -> None:
    env = {
        **env,
        "TOKENWARD_COMPAT_PORT": "0",
        "TOKENWARD_REDIS_URL": redis_server_url,
        "TOKENWARD_REDIS_PREFIX": redis_prefix,
    }
    served = Serve(env, tmp_path, "--workers", "2").start()
    try:
        found = COMPAT.search(served.stdout())
        assert found, served.output()
        url = f"http://127.0.0.1:{found.group(2)}"
        deadline = time.monotonic() + 30
        # Each worker starts the compatibility listener on the shared socket and says so.
        while served.stderr().count(f"Running on {url}") < 2:
            assert time.monotonic() < deadline, served.output()
            time.sleep(0.1)
        for _ in range(10):
            with httpx.Client(trust_env=False) as fresh:  # a new connection each time
                assert fresh.get(f"{url}/healthz").status_code == 200
        with httpx.Client(http1=False, http2=True, trust_env=False) as h2c:
            assert h2c.get(f"{url}/healthz").http_version == "HTTP/2"
    finally:
        code = served.stop()
    assert code in (0, -15), served.output()
    assert "Traceback" not in served.stderr()
