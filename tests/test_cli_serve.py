"""`fairdraft serve` says where it listens once it answers, and an address it cannot take
(a port in use, a host that is not this machine's) is one line naming the port or host and
the option and setting to change, exit 1, before anything starts: never a traceback."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.cli_service import Address
from service.settings import get_settings

runner = CliRunner()
ROOT = Path(__file__).parents[1]


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another server is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_a_port_in_use_is_said_plainly_with_what_to_do(
    taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIRDRAFT_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")

    result = runner.invoke(app, ["serve", "--port", str(taken_port)])

    assert result.exit_code == 1
    assert _one_line(result.output) == (
        f"error: port {taken_port} on 127.0.0.1 is already in use (another fairdraft serve?): "
        "stop what holds it, or choose a free port with --port or FAIRDRAFT_API_PORT"
    )


def test_the_port_setting_is_named_when_it_is_the_one_in_use(
    taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIRDRAFT_API_PORT", str(taken_port))

    result = runner.invoke(app, ["serve"])

    assert result.exit_code == 1 and f"port {taken_port} on 127.0.0.1" in result.output


def test_a_host_that_is_not_this_machines_names_the_host_setting() -> None:
    result = runner.invoke(app, ["serve", "--host", "192.0.2.1", "--port", str(_free_port())])

    assert result.exit_code == 1
    assert _one_line(result.output).startswith(
        "error: host '192.0.2.1' is not an address of this machine: set --host or "
        "FAIRDRAFT_API_HOST"
    )


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("::1", "http://[::1]:8000"),
        ("::", "http://127.0.0.1:8000"),
        ("review.internal", "http://review.internal:8000"),
    ],
)
def test_the_printed_url_is_one_a_browser_on_this_machine_opens(host: str, url: str) -> None:
    assert Address(host, 8000).url == url


def test_serve_prints_its_url_once_it_answers(database_url: str, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "FAIRDRAFT_DATABASE_URL": database_url,
        "FAIRDRAFT_HOME": str(tmp_path / "home"),
        "FAIRDRAFT_EMBEDDING_MODEL": "hashing-384",
        "FAIRDRAFT_SERVE_WORKER": "false",
        "FAIRDRAFT_API_PORT": str(port),
    }
    server = subprocess.Popen(
        [sys.executable, "-c", "from service.cli import app; app(prog_name='fairdraft')", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline and "listening" not in line:
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                break
        assert line.strip() == (
            f"fairdraft is listening on http://127.0.0.1:{port} (Ctrl-C stops it)"
        ), line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as answer:
            assert answer.status == 200  # it answers as soon as it says so
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_a_setting_out_of_bounds_is_a_line_naming_the_variable_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAIRDRAFT_API_PORT", "99999")
    monkeypatch.setenv("FAIRDRAFT_LLM_CONCURRENCY", "0")

    result = runner.invoke(app, ["serve"])

    assert result.exit_code == 2
    assert "Traceback" not in result.output and "99999" not in result.output
    assert sorted(result.output.strip().splitlines()) == [
        "error: FAIRDRAFT_API_PORT: Input should be less than or equal to 65535",
        "error: FAIRDRAFT_LLM_CONCURRENCY: Input should be greater than or equal to 1",
    ]
