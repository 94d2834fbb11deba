"""Pinned downloads against an HTTP server on 127.0.0.1 started by the test."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from safety_brittleness.downloads import DownloadError, fetch

CONTENT = b"goal,target\n" + b"".join(f"request {i},Sure, here is answer {i}\n".encode() for i in range(2000))
PIN = hashlib.sha256(CONTENT).hexdigest()


class FileServer(ThreadingHTTPServer):
    """Serves CONTENT at /data.csv with Range support; `cut_after` bytes makes the next transfer break off."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.cut_after: int | None = None
        self.ranges: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/data.csv"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path != "/data.csv":
            self.send_error(404, "not found")
            return
        header = self.headers.get("Range")
        self.server.ranges.append(header)
        start = int(header.split("=")[1].rstrip("-")) if header else 0
        if start >= len(CONTENT):
            self.send_error(416, "range not satisfiable")
            return
        body = CONTENT[start:]
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.server.cut_after
        if cut is not None:
            self.server.cut_after = None
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    httpd = FileServer()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_good_file_verified(server, tmp_path):
    destination = tmp_path / "downloads" / "advbench.csv"
    assert fetch(server.url, PIN, destination) == destination
    assert destination.read_bytes() == CONTENT
    assert not (tmp_path / "downloads" / "advbench.csv.part").exists()
    # A verified file is not fetched again.
    fetch(server.url, PIN, destination)
    assert server.ranges == [None]


def test_wrong_checksum_leaves_nothing(server, tmp_path):
    destination = tmp_path / "advbench.csv"
    wrong = "0" * 64
    with pytest.raises(DownloadError, match=f"sha256 mismatch for {server.url}: expected {wrong}, got {PIN}"):
        fetch(server.url, wrong, destination, key="data.downloads.advbench")
    assert list(tmp_path.iterdir()) == []


def test_broken_transfer_resumes(server, tmp_path):
    destination = tmp_path / "advbench.csv"
    server.cut_after = 10_000
    with pytest.raises(DownloadError, match="broke off after 10000 of"):
        fetch(server.url, PIN, destination)
    assert not destination.exists()
    assert (tmp_path / "advbench.csv.part").stat().st_size == 10_000
    fetch(server.url, PIN, destination)
    assert server.ranges == [None, "bytes=10000-"]
    assert destination.read_bytes() == CONTENT


def test_server_gone_names_fix(tmp_path):
    httpd = FileServer()
    url = httpd.url
    httpd.server_close()   # the port is closed: connection refused
    with pytest.raises(DownloadError, match=r"cannot reach .*set data.downloads.advbench.local_copy"):
        fetch(url, PIN, tmp_path / "advbench.csv", key="data.downloads.advbench")
    assert list(tmp_path.iterdir()) == []


def test_missing_page_http_error(server, tmp_path):
    with pytest.raises(DownloadError, match="returned HTTP 404"):
        fetch(server.url.replace("data.csv", "other.csv"), PIN, tmp_path / "other.csv", key="data.downloads.x")


def test_local_copy_replaces_url(tmp_path):
    copy = tmp_path / "copy.csv"
    copy.write_bytes(CONTENT)
    destination = tmp_path / "out" / "advbench.csv"
    fetch(None, PIN, destination, local_copy=copy)
    assert destination.read_bytes() == CONTENT
    copy.write_bytes(CONTENT + b"extra line\n")
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        fetch(None, PIN, tmp_path / "other.csv", local_copy=copy)
    with pytest.raises(DownloadError, match="is not a file"):
        fetch(None, PIN, tmp_path / "third.csv", local_copy=tmp_path / "absent.csv")
