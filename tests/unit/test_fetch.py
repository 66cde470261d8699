"""Fetching the ISIC 2018 archives: download with resume, checksums, unpacking, errors, and the Snakemake rule.

Everything is served by a local HTTP server on 127.0.0.1 from zip files made here with the official folder
structure; every network call has a short timeout, so no test can hang.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import logging
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lesionflow.errors import InputError
from lesionflow.fetch import download, fetch_archives, unpack
from lesionflow.isic import FOLDERS, GROUPINGS_CSV, LABEL_CSV

from support import ROOT

VENV_BIN = Path(sys.executable).parent
IMAGES = FOLDERS["seg_train_images"]  # ISIC2018_Task1-2_Training_Input
LABELS = FOLDERS["train_labels"]  # ISIC2018_Task3_Training_GroundTruth


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------- the server


@dataclass
class Served:
    """What the test server serves and how it misbehaves; it records every request."""

    files: dict[str, bytes] = field(default_factory=dict)
    drop_after: dict[str, int] = field(default_factory=dict)  # path -> bytes sent before the first answer breaks
    status: dict[str, int] = field(default_factory=dict)  # path -> error status to answer
    stall: dict[str, float] = field(default_factory=dict)  # path -> seconds to wait before the body
    ignore_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Handler(http.server.BaseHTTPRequestHandler):
    """GET with Range support (bytes=N- and bytes=N-M), simulated drops, stalls and error statuses."""

    served: Served

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802
        served = self.served
        path = self.path.split("?")[0]
        range_header = self.headers.get("Range")
        with served.lock:
            served.requests.append((path, range_header))
            drop = served.drop_after.pop(path, None)  # only the first request breaks off
        if path in served.status:
            self.send_error(served.status[path])
            return
        if path not in served.files:
            self.send_error(404)
            return
        data = served.files[path]
        start, end, code = 0, len(data) - 1, 200
        if range_header and not served.ignore_range:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", range_header)
            assert match, range_header
            start = int(match.group(1))
            end = min(int(match.group(2)), end) if match.group(2) else end
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            code = 206
        body = data[start : end + 1]
        self.send_response(code)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if path in served.stall:
            time.sleep(served.stall[path])
        if drop is not None:
            self.wfile.write(body[:drop])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-file
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    """(Served, base URL) of a threaded HTTP server on 127.0.0.1; shut down after the test."""
    served = Served()
    handler = type("BoundHandler", (Handler,), {"served": served})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


# ---------------------------------------------------------------------------------------------- archives


@pytest.fixture
def jpegs(make_jpeg) -> dict[str, bytes]:
    """Two real JPEGs, by ISIC file name."""
    return {
        name: make_jpeg(name, 96, 128, seed=i).read_bytes()
        for i, name in enumerate(["ISIC_0000000.jpg", "ISIC_0000001.jpg"])
    }


def make_zip(files: dict[str, bytes], macos_junk: bool = False) -> bytes:
    """A zip archive of ``files`` (member name -> bytes), with folder entries as zip tools write them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        folders = sorted({name.rsplit("/", 1)[0] + "/" for name in files if "/" in name})
        for folder in folders:
            zf.writestr(folder, b"")
        for name, data in files.items():
            zf.writestr(name, data)
        if macos_junk:
            zf.writestr("__MACOSX/", b"")
            for name in files:
                head, _, tail = name.rpartition("/")
                zf.writestr(f"__MACOSX/{head + '/' if head else ''}._{tail}", b"\x00\x05\x16\x07junk")
            zf.writestr(f"{next(iter(files)).split('/')[0]}/.DS_Store", b"junk")
    return buffer.getvalue()


@pytest.fixture
def isic_archives(jpegs) -> dict[str, bytes]:
    """URL path -> bytes: an image archive (one top folder, macOS junk), a label archive whose files sit
    at the top level, and the plain lesion-groupings CSV."""
    csv = (
        "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC\nISIC_0000000,1.0,0.0,0.0,0.0,0.0,0.0,0.0\n"
        "ISIC_0000001,0.0,1.0,0.0,0.0,0.0,0.0,0.0\n"
    ).encode()
    groupings = b"image,lesion_id,diagnosis_confirm_type\nISIC_0000000,HAM_0000001,histopathology\n"
    return {
        f"/2018/{IMAGES}.zip": make_zip(
            {f"{IMAGES}/{n}": d for n, d in jpegs.items()} | {f"{IMAGES}/LICENSE.txt": b"CC-BY-NC"}, macos_junk=True
        ),
        f"/2018/{LABELS}.zip": make_zip({LABEL_CSV["train"]: csv}),
        f"/2018/{GROUPINGS_CSV}": groupings,
    }


def archive_entries(base: str, archives: dict[str, bytes], with_sha: bool = True) -> list[dict]:
    entries = [
        {"name": IMAGES, "url": f"{base}/2018/{IMAGES}.zip"},
        {"name": LABELS, "url": f"{base}/2018/{LABELS}.zip"},
        {"name": GROUPINGS_CSV, "folder": LABELS, "url": f"{base}/2018/{GROUPINGS_CSV}"},
    ]
    if with_sha:
        for entry in entries:
            entry["sha256"] = sha(archives[entry["url"][len(base) :]])
    return entries


def leftovers(folder: Path) -> list[str]:
    """Hidden staging folders or part files anywhere under ``folder``."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.name.startswith(".unpack-") or p.name.endswith(".part") or ".fetch-" in p.name
    )


# ---------------------------------------------------------------------------------------------- a good run


def test_good_run_unpacks_official_folders_and_verifies(server, isic_archives, jpegs, tmp_path):
    served, base = server
    served.files.update(isic_archives)
    data_dir, downloads = tmp_path / "data", tmp_path / "downloads"

    records = fetch_archives(archive_entries(base, isic_archives), data_dir, downloads, progress=False, timeout=5)

    for name, data in jpegs.items():
        assert (data_dir / IMAGES / name).read_bytes() == data
    assert (data_dir / IMAGES / "LICENSE.txt").read_bytes() == b"CC-BY-NC"
    assert sorted(p.name for p in (data_dir / IMAGES).iterdir()) == [
        "ISIC_0000000.jpg",
        "ISIC_0000001.jpg",
        "LICENSE.txt",
    ]  # no .DS_Store, no ._ files
    assert sorted(p.name for p in data_dir.iterdir()) == [IMAGES, LABELS]  # no __MACOSX, no staging
    # the label archive's files sit at the top level: they go into its folder, next to the groupings CSV
    assert sorted(p.name for p in (data_dir / LABELS).iterdir()) == sorted([LABEL_CSV["train"], GROUPINGS_CSV])
    assert (data_dir / LABELS / GROUPINGS_CSV).read_bytes() == isic_archives[f"/2018/{GROUPINGS_CSV}"]
    assert [r["status"] for r in records] == ["fetched"] * 3
    assert all(r["verified"] for r in records)
    assert {r["name"]: r["sha256"] for r in records} == {
        IMAGES: sha(isic_archives[f"/2018/{IMAGES}.zip"]),
        LABELS: sha(isic_archives[f"/2018/{LABELS}.zip"]),
        GROUPINGS_CSV: sha(isic_archives[f"/2018/{GROUPINGS_CSV}"]),
    }
    assert list(downloads.iterdir()) == []  # archives are removed once unpacked (keep_archives=False)
    assert all(rng is None for _, rng in served.requests)

    # a second run finds everything in place and downloads nothing
    count = len(served.requests)
    again = fetch_archives(archive_entries(base, isic_archives), data_dir, downloads, progress=False, timeout=5)
    assert [r["status"] for r in again] == ["present"] * 3
    assert len(served.requests) == count


def test_keep_archives_and_reuse_of_an_earlier_download(server, isic_archives, tmp_path):
    served, base = server
    served.files.update(isic_archives)
    entries = archive_entries(base, isic_archives)[:1]
    data_dir, downloads = tmp_path / "data", tmp_path / "downloads"
    fetch_archives(entries, data_dir, downloads, keep_archives=True, progress=False, timeout=5)
    kept = downloads / f"{IMAGES}.zip"
    assert kept.read_bytes() == isic_archives[f"/2018/{IMAGES}.zip"]
    # the folder is gone but the verified download is still there: unpacked again without a request
    shutil.rmtree(data_dir / IMAGES)
    count = len(served.requests)
    fetch_archives(entries, data_dir, downloads, keep_archives=True, progress=False, timeout=5)
    assert len(served.requests) == count
    assert (data_dir / IMAGES / "ISIC_0000000.jpg").is_file()


def tree(root: Path) -> dict[str, str]:
    """SHA-256 of every file below ``root`` ("dir" for folders): what must stay as it is."""
    return {str(p.relative_to(root)): "dir" if p.is_dir() else sha(p.read_bytes()) for p in sorted(root.rglob("*"))}


def test_archives_the_user_put_in_download_dir_are_used_and_never_removed(server, isic_archives, tmp_path):
    served, base = server
    served.files.update(isic_archives)
    data_dir, downloads = tmp_path / "data", tmp_path / "downloads"
    downloads.mkdir()
    (downloads / f"{IMAGES}.zip").write_bytes(isic_archives[f"/2018/{IMAGES}.zip"])
    (downloads / GROUPINGS_CSV).write_bytes(isic_archives[f"/2018/{GROUPINGS_CSV}"])
    before = tree(downloads)
    records = fetch_archives(archive_entries(base, isic_archives), data_dir, downloads, progress=False, timeout=5)
    assert [r["status"] for r in records] == ["fetched"] * 3
    assert [path for path, _ in served.requests] == [f"/2018/{LABELS}.zip"]  # only the missing one
    assert tree(downloads) == before  # kept although keep_archives is off: this run did not download them
    assert (data_dir / LABELS / GROUPINGS_CSV).read_bytes() == isic_archives[f"/2018/{GROUPINGS_CSV}"]
    assert (data_dir / IMAGES / "ISIC_0000000.jpg").is_file()


def test_a_file_in_download_dir_that_does_not_verify_is_left_alone(server, isic_archives, tmp_path):
    served, base = server
    served.files.update(isic_archives)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / f"{IMAGES}.zip").write_bytes(b"my own, other archive")
    with pytest.raises(InputError) as exc:
        fetch_archives(
            archive_entries(base, isic_archives)[:1], tmp_path / "data", downloads, progress=False, timeout=5
        )
    assert str(exc.value).startswith(f"{downloads / (IMAGES + '.zip')}: has SHA-256 {sha(b'my own, other archive')}")
    assert "nothing was changed" in str(exc.value)
    assert (downloads / f"{IMAGES}.zip").read_bytes() == b"my own, other archive"
    assert served.requests == [] and not (tmp_path / "data" / IMAGES).exists()


def users_data_dir(root: Path) -> Path:
    """A data_dir that already holds an image folder of the user's, under its official name."""
    data_dir = root / "data"
    (data_dir / IMAGES).mkdir(parents=True)
    (data_dir / IMAGES / "ISIC_0000000.jpg").write_bytes(b"the user's own image")
    return data_dir


def test_folders_and_files_already_in_data_dir_are_never_replaced(server, isic_archives, tmp_path):
    served, base = server
    served.files.update(isic_archives)
    data_dir = users_data_dir(tmp_path)
    (data_dir / LABELS).mkdir()
    (data_dir / LABELS / GROUPINGS_CSV).write_text("image,lesion_id\nISIC_0000000,mine\n")
    before = tree(data_dir)
    records = fetch_archives(
        archive_entries(base, isic_archives), data_dir, tmp_path / "downloads", progress=False, timeout=5
    )
    assert {r["name"]: r["status"] for r in records} == {IMAGES: "present", LABELS: "present", GROUPINGS_CSV: "present"}
    assert tree(data_dir) == before
    assert served.requests == []


def test_missing_sha256_warns_with_the_actual_hash(server, isic_archives, tmp_path, caplog):
    served, base = server
    served.files.update(isic_archives)
    entries = archive_entries(base, isic_archives, with_sha=False)[:1]
    with caplog.at_level(logging.WARNING, logger="lesionflow"):
        records = fetch_archives(entries, tmp_path / "data", tmp_path / "dl", progress=False, timeout=5)
    actual = sha(isic_archives[f"/2018/{IMAGES}.zip"])
    assert records[0]["verified"] is False and records[0]["sha256"] == actual
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("not verified" in w and actual in w for w in warnings), warnings
    assert (tmp_path / "data" / IMAGES / "ISIC_0000001.jpg").is_file()


# ---------------------------------------------------------------------------------------------- resume


def test_interrupted_download_resumes_with_a_range_request(server, isic_archives, tmp_path):
    served, base = server
    path = f"/2018/{IMAGES}.zip"
    data = isic_archives[path]
    served.files[path] = data
    cut = len(data) // 2
    served.drop_after[path] = cut
    dest = tmp_path / "dl" / f"{IMAGES}.zip"
    part = dest.with_name(dest.name + ".part")

    with pytest.raises(InputError) as exc:
        download(base + path, dest, sha(data), chunk=1024, progress=False, timeout=5, retries=0)
    message = str(exc.value)
    assert f"broke off at byte {cut} of {len(data)}" in message and "run again to resume" in message
    assert "\n" not in message
    assert not dest.exists() and part.read_bytes() == data[:cut]

    actual = download(base + path, dest, sha(data), chunk=1024, progress=False, timeout=5, retries=0)
    assert actual == sha(data) and dest.read_bytes() == data and not part.exists()
    assert served.requests == [(path, None), (path, f"bytes={cut}-")]


def test_retries_resume_within_one_call(server, isic_archives, tmp_path):
    served, base = server
    path = f"/2018/{IMAGES}.zip"
    data = isic_archives[path]
    served.files[path] = data
    served.drop_after[path] = 1000
    dest = tmp_path / "archive.zip"
    assert download(base + path, dest, sha(data), chunk=256, progress=True, timeout=5, retries=1, retry_wait=0) == sha(
        data
    )
    assert dest.read_bytes() == data
    assert served.requests == [(path, None), (path, "bytes=1000-")]


def test_server_ignoring_range_restarts_cleanly(server, isic_archives, tmp_path):
    served, base = server
    path = f"/2018/{LABELS}.zip"
    data = isic_archives[path]
    served.files[path] = data
    served.ignore_range = True
    dest = tmp_path / "archive.zip"
    dest.with_name("archive.zip.part").write_bytes(b"stale bytes from some other file")
    assert download(base + path, dest, sha(data), progress=False, timeout=5, retries=0) == sha(data)
    assert dest.read_bytes() == data  # the stale part was overwritten, not appended to
    assert served.requests == [(path, "bytes=32-")]


@pytest.mark.parametrize("extra", [0, 7], ids=["part-complete", "part-too-long"])
def test_range_not_satisfiable(server, isic_archives, tmp_path, extra):
    served, base = server
    path = f"/2018/{LABELS}.zip"
    data = isic_archives[path]
    served.files[path] = data
    dest = tmp_path / "archive.zip"
    dest.with_name("archive.zip.part").write_bytes(data + b"x" * extra)
    assert download(base + path, dest, sha(data), progress=False, timeout=5, retries=0) == sha(data)
    assert dest.read_bytes() == data
    expected = [(path, f"bytes={len(data) + extra}-")] + ([(path, None)] if extra else [])
    assert served.requests == expected


# ---------------------------------------------------------------------------------------------- errors


def test_wrong_checksum_leaves_nothing(server, isic_archives, tmp_path):
    served, base = server
    served.files.update(isic_archives)
    entries = archive_entries(base, isic_archives)
    wrong = "0" * 64
    entries[0]["sha256"] = wrong
    data_dir, downloads = tmp_path / "data", tmp_path / "downloads"
    with pytest.raises(InputError) as exc:
        fetch_archives(entries, data_dir, downloads, progress=False, timeout=5)
    message = str(exc.value)
    actual = sha(isic_archives[f"/2018/{IMAGES}.zip"])
    assert "SHA-256 mismatch" in message and entries[0]["url"] in message
    assert f"expected {wrong}" in message and f"got {actual}" in message and "\n" not in message
    assert not (data_dir / IMAGES).exists() and not (data_dir / LABELS).exists()
    assert list(downloads.iterdir()) == []  # no .part, no archive
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("status", [404, 500, 503])
def test_http_error_names_status_and_url(server, tmp_path, status):
    served, base = server
    served.status["/2018/missing.zip"] = status
    url = f"{base}/2018/missing.zip"
    with pytest.raises(InputError) as exc:
        download(url, tmp_path / "missing.zip", None, progress=False, timeout=5, retries=0)
    message = str(exc.value)
    assert f"HTTP {status}" in message and url in message and "\n" not in message
    assert not (tmp_path / "missing.zip").exists() and not (tmp_path / "missing.zip.part").exists()


def test_server_errors_are_retried_but_not_found_is_not(server, tmp_path):
    served, base = server
    served.status["/a.zip"] = 500
    with pytest.raises(InputError, match=r"HTTP 500 .*gave up after 3 attempt"):
        download(f"{base}/a.zip", tmp_path / "a.zip", None, progress=False, timeout=5, retries=2, retry_wait=0)
    assert served.requests == [("/a.zip", None)] * 3
    served.requests.clear()
    with pytest.raises(InputError, match="HTTP 404"):
        download(f"{base}/b.zip", tmp_path / "b.zip", None, progress=False, timeout=5, retries=2, retry_wait=0)
    assert served.requests == [("/b.zip", None)]


def test_fetch_stops_at_a_server_error_and_unpacks_nothing_of_it(server, isic_archives, tmp_path):
    served, base = server
    served.files.update(isic_archives)
    served.status[f"/2018/{LABELS}.zip"] = 500
    with pytest.raises(InputError, match=rf"HTTP 500 .*{re.escape(base)}/2018/{LABELS}\.zip"):
        fetch_archives(
            archive_entries(base, isic_archives),
            tmp_path / "data",
            tmp_path / "dl",
            progress=False,
            timeout=5,
            retries=0,
        )
    assert (tmp_path / "data" / IMAGES).is_dir()  # the archive before it is in place
    assert not (tmp_path / "data" / LABELS).exists()  # the failed one and the CSV that goes into it are not
    assert leftovers(tmp_path) == []


def test_connection_refused_is_one_clear_line(tmp_path):
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.zip"
    with pytest.raises(InputError) as exc:
        download(url, tmp_path / "x.zip", None, progress=False, timeout=2, retries=0)
    assert "cannot reach" in str(exc.value) and url in str(exc.value) and "\n" not in str(exc.value)


def test_stalled_server_times_out(server, isic_archives, tmp_path):
    served, base = server
    path = f"/2018/{LABELS}.zip"
    served.files[path] = isic_archives[path]
    served.stall[path] = 3
    start = time.monotonic()
    with pytest.raises(InputError, match=r"stalled for 0\.5 s|within 0\.5 s"):
        download(base + path, tmp_path / "x.zip", None, progress=False, timeout=0.5, retries=0)
    assert time.monotonic() - start < 2.5


@pytest.mark.parametrize(
    "entry, key",
    [
        ({"name": "../evil", "url": "http://127.0.0.1/x.zip"}, "fetch.archives[0].name"),
        ({"name": "A", "url": "ftp://127.0.0.1/x.zip"}, "fetch.archives[0].url"),
        ({"name": "A", "url": "http://127.0.0.1/x.zip", "sha256": "abc"}, "fetch.archives[0].sha256"),
        ({"name": "A", "url": "http://127.0.0.1/x.zip", "folder": "a/b"}, "fetch.archives[0].folder"),
    ],
)
def test_bad_entries_name_the_config_key(tmp_path, entry, key):
    with pytest.raises(InputError, match=re.escape(key)):
        fetch_archives([entry], tmp_path / "data", tmp_path / "dl", progress=False)
    assert not (tmp_path / "dl").exists()


def test_no_archives_configured(tmp_path):
    with pytest.raises(InputError, match="fetch.archives"):
        fetch_archives([], tmp_path / "data", tmp_path / "dl")


# ---------------------------------------------------------------------------------------------- unpacking


@pytest.mark.parametrize(
    "member", ["../evil.txt", f"{IMAGES}/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt", f"{IMAGES}\\..\\..\\evil.txt"]
)
def test_zip_slip_member_is_refused(tmp_path, jpegs, member):
    zip_path = tmp_path / "evil.zip"
    zip_path.write_bytes(make_zip({f"{IMAGES}/ISIC_0000000.jpg": jpegs["ISIC_0000000.jpg"], member: b"pwned"}))
    data_dir = tmp_path / "deep" / "data"
    with pytest.raises(InputError, match="refusing archive member") as exc:
        unpack(zip_path, data_dir, IMAGES)
    assert str(zip_path) in str(exc.value)
    assert not (data_dir / IMAGES).exists()
    assert not list(tmp_path.rglob("evil.txt"))
    assert leftovers(tmp_path) == []


def test_zip_slip_in_fetch_leaves_nothing(server, jpegs, tmp_path):
    served, base = server
    served.files["/evil.zip"] = make_zip({f"{IMAGES}/ok.jpg": jpegs["ISIC_0000000.jpg"], "../../evil.txt": b"x"})
    with pytest.raises(InputError, match="refusing"):
        fetch_archives(
            [{"name": IMAGES, "url": f"{base}/evil.zip"}], tmp_path / "data", tmp_path / "dl", progress=False, timeout=5
        )
    assert not (tmp_path / "data" / IMAGES).exists() and not list(tmp_path.rglob("evil.txt"))


def test_unpack_renames_an_unexpected_top_folder(tmp_path, jpegs, caplog):
    zip_path = tmp_path / "a.zip"
    zip_path.write_bytes(make_zip({f"Other_Name/{n}": d for n, d in jpegs.items()}, macos_junk=True))
    with caplog.at_level(logging.WARNING, logger="lesionflow"):
        target = unpack(zip_path, tmp_path / "data", IMAGES)
    assert target == tmp_path / "data" / IMAGES
    assert sorted(p.name for p in target.iterdir()) == sorted(jpegs)
    assert "Other_Name" in caplog.text
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [IMAGES]


def test_unpack_never_overwrites_an_existing_folder(tmp_path, jpegs):
    zip_path = tmp_path / "a.zip"
    zip_path.write_bytes(make_zip({f"{IMAGES}/{n}": d for n, d in jpegs.items()}))
    (tmp_path / "data" / IMAGES).mkdir(parents=True)
    (tmp_path / "data" / IMAGES / "mine.jpg").write_bytes(b"user data")
    with pytest.raises(InputError, match="already exists"):
        unpack(zip_path, tmp_path / "data", IMAGES)
    assert [p.name for p in (tmp_path / "data" / IMAGES).iterdir()] == ["mine.jpg"]


@pytest.mark.parametrize("content", [b"this is not a zip file", b""], ids=["garbage", "empty-file"])
def test_unpack_rejects_a_broken_archive(tmp_path, content):
    zip_path = tmp_path / "a.zip"
    zip_path.write_bytes(content)
    with pytest.raises(InputError, match="not a readable zip archive.*delete it") as exc:
        unpack(zip_path, tmp_path / "data", IMAGES)
    assert str(zip_path) in str(exc.value)
    assert not (tmp_path / "data" / IMAGES).exists()


def test_unpack_corrupt_member_leaves_nothing(tmp_path, jpegs):
    data = bytearray(make_zip({f"{IMAGES}/{n}": d for n, d in jpegs.items()}))
    # flip bytes inside the second file's compressed data: it fails to inflate or its CRC check fails
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo(f"{IMAGES}/ISIC_0000001.jpg")
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    offset = info.header_offset + 30 + name_len + extra_len + info.compress_size // 2
    data[offset : offset + 16] = bytes(b ^ 0xFF for b in data[offset : offset + 16])
    zip_path = tmp_path / "a.zip"
    zip_path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt zip archive"):
        unpack(zip_path, tmp_path / "data", IMAGES)
    assert list((tmp_path / "data").iterdir()) == []  # not even a half-filled staging folder


def test_unpack_empty_archive(tmp_path):
    zip_path = tmp_path / "a.zip"
    zip_path.write_bytes(make_zip({"__MACOSX/._x": b"junk"}))
    with pytest.raises(InputError, match="holds no files"):
        unpack(zip_path, tmp_path / "data", IMAGES)


# ---------------------------------------------------------------------------------------------- the rule


def run_rule(workdir: Path, base: str, archives: dict[str, bytes], sha_override: str | None = None):
    config = {"data_dir": "data", "fetch": {"download_dir": "downloads", "archives": archive_entries(base, archives)}}
    if sha_override:
        config["fetch"]["archives"][0]["sha256"] = sha_override
    (workdir / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    (workdir / "Snakefile").write_text(f'configfile: "config.yaml"\n\ninclude: "{ROOT / "workflow/rules/fetch.smk"}"\n')
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(VENV_BIN / "snakemake"), "fetch_isic2018", "--cores", "1"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_snakemake_rule_fetches_into_data_dir(server, isic_archives, jpegs, tmp_path):
    served, base = server
    served.files.update(isic_archives)
    proc = run_rule(tmp_path, base, isic_archives)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data_dir = tmp_path / "data"
    assert sorted(p.name for p in (data_dir / IMAGES).iterdir()) == sorted([*jpegs, "LICENSE.txt"])
    assert (data_dir / LABELS / GROUPINGS_CSV).is_file() and (data_dir / LABELS / LABEL_CSV["train"]).is_file()
    marker = json.loads((data_dir / ".fetched").read_text())
    assert [(r["name"], r["status"], r["verified"]) for r in marker] == [
        (IMAGES, "fetched", True),
        (LABELS, "fetched", True),
        (GROUPINGS_CSV, "fetched", True),
    ]
    log = (tmp_path / "results/logs/fetch_isic2018.log").read_text()
    assert "SHA-256 verified" in log and "3 fetched, 0 already present" in log
    assert (tmp_path / "results/benchmarks/fetch_isic2018.tsv").is_file()


def test_snakemake_rule_wrong_checksum_fails_with_one_line(server, isic_archives, tmp_path):
    served, base = server
    served.files.update(isic_archives)
    proc = run_rule(tmp_path, base, isic_archives, sha_override="f" * 64)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and "SHA-256 mismatch" in errors[0] and f"expected {'f' * 64}" in errors[0]
    assert not (tmp_path / "data" / IMAGES).exists() and not (tmp_path / "data" / ".fetched").exists()
    assert leftovers(tmp_path) == []


def test_snakemake_rule_adds_to_data_dir_and_keeps_what_it_holds(server, isic_archives, tmp_path):
    served, base = server
    served.files.update(isic_archives)
    data_dir = users_data_dir(tmp_path)
    (data_dir / "notes.txt").write_text("mine\n")
    before = tree(data_dir)
    proc = run_rule(tmp_path, base, isic_archives)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = tree(data_dir)
    assert {k: after[k] for k in before} == before  # the image folder and the note as they were
    assert sorted(set(after) - set(before)) == sorted(
        [".fetched", LABELS, f"{LABELS}/{GROUPINGS_CSV}", f"{LABELS}/{LABEL_CSV['train']}"]
    )
    assert f"/2018/{IMAGES}.zip" not in [path for path, _ in served.requests]
