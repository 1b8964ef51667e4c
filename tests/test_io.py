import http.server
import threading

import pytest

from piano_transcription.io import DownloadError, atomic_path, download

CONTENT = bytes(range(256)) * 400


class RangeHandler(http.server.BaseHTTPRequestHandler):
    requests = []

    def do_GET(self):  # noqa: N802
        RangeHandler.requests.append(self.headers.get("Range"))
        if self.path != "/file.zip":
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
        else:
            self.send_response(200)
        body = CONTENT[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_download_resumes_a_partial_file(server, tmp_path):
    dest = tmp_path / "file.zip"
    (tmp_path / "file.zip.part").write_bytes(CONTENT[:1000])
    RangeHandler.requests.clear()
    assert download(f"{server}/file.zip", dest, progress=False) == dest
    assert dest.read_bytes() == CONTENT
    assert RangeHandler.requests == ["bytes=1000-"]
    assert not (tmp_path / "file.zip.part").exists()
    download(f"{server}/file.zip", dest, progress=False)  # present: nothing fetched
    assert len(RangeHandler.requests) == 1


def test_download_errors_are_clear(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server}/missing.zip", tmp_path / "m.zip", progress=False)
    with pytest.raises(DownloadError, match="offline"):
        download("http://127.0.0.1:9/x.zip", tmp_path / "x.zip", timeout=2, progress=False)


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole" and oct(target.stat().st_mode & 0o777) != "0o600"
