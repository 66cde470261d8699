"""Download the official ISIC 2018 archives, resuming and verifying them, and unpack them into ``data_dir``.

Only the standard library (``urllib``, ``hashlib``, ``zipfile``) and tqdm. A download goes to ``<dest>.part``
and is resumed with an HTTP Range request; it takes its final name only once complete and verified. An
archive is unpacked into a temporary folder inside ``data_dir`` and its folder renamed into place in one step,
so a folder with an official name is always complete.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

from tqdm import tqdm

from .errors import InputError

log = logging.getLogger("lesionflow")

SHA256_PATTERN = re.compile(r"^[0-9a-fA-F]{64}$")
#: A file or folder name: one path component, no separators, not hidden.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Archive members that macOS and Windows add and that are never data.
JUNK_DIRS = frozenset({"__MACOSX"})
JUNK_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
_CONTENT_RANGE = re.compile(r"^bytes\s+(\d+)-(\d+)/(\d+|\*)$")
_USER_AGENT = "lesionflow-fetch/1"


class _Retryable(Exception):
    """A transfer that broke off (or a 5xx answer): worth resuming; the message is the user's one line."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _check_sha(sha256: str | None, source: str) -> str | None:
    if sha256 is None:
        return None
    if not isinstance(sha256, str) or not SHA256_PATTERN.match(sha256):
        raise InputError(f"sha256 {sha256!r} is not 64 hexadecimal digits", source)
    return sha256.lower()


def _open(url: str, start: int, timeout: float) -> http.client.HTTPResponse:
    """GET ``url`` (from byte ``start`` when > 0); HTTP and connection errors become one-line errors."""
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if start > 0:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and start > 0:
            raise  # the part file is as long as (or longer than) the file: the caller decides
        message = f"download failed: HTTP {exc.code} {exc.reason} from {url}"
        if exc.code >= 500:
            raise _Retryable(message) from exc
        raise InputError(message) from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise _Retryable(f"download failed: no answer from {url} within {timeout:g} s") from exc
        raise _Retryable(f"download failed: cannot reach {url}: {reason}") from exc
    except (socket.timeout, TimeoutError) as exc:
        raise _Retryable(f"download failed: no answer from {url} within {timeout:g} s") from exc
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        raise _Retryable(f"download failed: connection to {url} broke: {exc or type(exc).__name__}") from exc


def _transfer(url: str, part: Path, chunk: int, progress: bool, timeout: float) -> str:
    """Bring ``part`` to the whole file, resuming from its current length; return the file's SHA-256."""
    start = part.stat().st_size if part.exists() else 0
    digest = hashlib.sha256()
    try:
        response = _open(url, start, timeout)
    except urllib.error.HTTPError as exc:  # 416: nothing left to send, or the part is longer than the file
        total = (exc.headers.get("Content-Range") or "").rpartition("/")[2]  # "bytes */<total>"
        if total.isdigit() and int(total) == start:
            log.info("%s: already complete in %s", url, part)
            return sha256_file(part, chunk)
        log.warning("%s: the server refused to resume at byte %d; starting again", url, start)
        part.unlink()
        return _transfer(url, part, chunk, progress, timeout)
    with response:
        status = response.status
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if start > 0 and status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != start:
                log.warning(
                    "%s: unexpected Content-Range %r; starting again", url, response.headers.get("Content-Range")
                )
                response.close()
                part.unlink()
                return _transfer(url, part, chunk, progress, timeout)
            total = None if match.group(3) == "*" else int(match.group(3))
            with open(part, "rb") as fh:  # the bytes already there count towards the checksum
                while block := fh.read(chunk):
                    digest.update(block)
            mode = "ab"
            log.info("%s: resuming at byte %d", url, start)
        else:
            if start > 0:
                log.warning("%s: the server ignored the Range request (HTTP %d); starting again", url, status)
            start, total, mode = 0, length, "wb"
        received = start
        bar = tqdm(
            total=total,
            initial=start,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name.removesuffix(".part"),
            disable=not progress,
            mininterval=0.5 if sys.stderr.isatty() else 30,
            file=sys.stderr,
        )
        try:
            with open(part, mode) as out:
                while True:
                    try:
                        block = response.read(chunk)
                    except (socket.timeout, TimeoutError) as exc:
                        raise _Retryable(
                            f"download of {url} stalled for {timeout:g} s at byte {received}"
                            + (f" of {total}" if total else "")
                        ) from exc
                    except (ConnectionError, http.client.HTTPException, OSError) as exc:
                        raise _Retryable(
                            f"download of {url} broke off at byte {received}"
                            + (f" of {total}" if total else "")
                            + f": {exc or type(exc).__name__}"
                        ) from exc
                    if not block:
                        break
                    out.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
        finally:
            bar.close()
    if total is not None and received != total:
        raise _Retryable(f"download of {url} broke off at byte {received} of {total}")
    return digest.hexdigest()


def download(
    url: str,
    dest: str | Path,
    sha256: str | None,
    chunk: int = 1 << 20,
    progress: bool = True,
    timeout: float = 60,
    retries: int = 3,
    retry_wait: float = 5.0,
) -> str:
    """Download ``url`` to ``dest``, resuming ``dest.part`` left by an interrupted run; return the SHA-256.

    A broken-off transfer (or an HTTP 5xx answer) is resumed up to ``retries`` times in this call, waiting
    ``retry_wait`` seconds times the attempt number; after that the part file stays for the next run. With
    ``sha256`` the file is verified: on a mismatch the part file is deleted and InputError raised. ``dest``
    appears only complete (and verified).
    """
    dest = Path(dest)
    expected = _check_sha(sha256, url)
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise InputError(f"URL {url!r} is not an http:// or https:// address")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    attempt = 0
    while True:
        try:
            actual = _transfer(url, part, chunk, progress, timeout)
            break
        except _Retryable as exc:
            if attempt >= retries:
                kept = part.stat().st_size if part.exists() else 0
                note = f"; {kept} bytes kept in {part}, run again to resume" if kept else ""
                raise InputError(f"{exc} (gave up after {attempt + 1} attempt(s){note})") from None
            attempt += 1
            log.warning("%s; retrying (%d of %d)", exc, attempt, retries)
            time.sleep(retry_wait * attempt)
        except OSError as exc:  # the download folder, not the network (those errors are converted above)
            raise InputError(f"cannot write the download of {url}: {exc.strerror or exc}", part) from None
    if expected is not None and actual != expected:
        part.unlink(missing_ok=True)
        raise InputError(
            f"SHA-256 mismatch for {url}: expected {expected}, got {actual} (the download was "
            "deleted: run again to download it anew; if it differs again, check sha256 under "
            "fetch.archives in the config)",
            dest,
        )
    os.replace(part, dest)
    return actual


def _member_parts(name: str, zip_path: Path) -> tuple[str, ...]:
    """The path components of a zip member, refusing absolute paths and ``..`` (zip slip)."""
    unified = name.replace("\\", "/")
    if unified.startswith("/") or re.match(r"^[A-Za-z]:", unified):
        raise InputError(f"refusing archive member with an absolute path: {name!r}", zip_path)
    parts = tuple(p for p in PurePosixPath(unified).parts if p not in ("", "."))
    if ".." in parts:
        raise InputError(f"refusing archive member that points outside its folder: {name!r}", zip_path)
    return parts


def _is_junk(parts: tuple[str, ...]) -> bool:
    return bool(parts) and (parts[0] in JUNK_DIRS or parts[-1] in JUNK_FILES or parts[-1].startswith("._"))


def unpack(zip_path: str | Path, data_dir: str | Path, expected_folder: str) -> Path:
    """Unpack ``zip_path`` as ``data_dir/expected_folder`` and return that folder.

    The archive's top-level folder becomes ``expected_folder`` (ISIC archives hold one folder named like the
    archive); an archive whose files sit at the top level is unpacked into ``expected_folder``. ``__MACOSX``
    and ``.DS_Store`` entries are skipped. Members with absolute paths or ``..`` are refused before anything is
    written. Everything is extracted into a temporary folder inside ``data_dir`` and renamed into place in one
    step, so on any failure nothing is left behind. An existing ``expected_folder`` is never overwritten.
    """
    zip_path, data_dir = Path(zip_path), Path(data_dir)
    if not NAME_PATTERN.match(expected_folder):
        raise InputError(f"{expected_folder!r} is not a plain folder name")
    target = data_dir / expected_folder
    if target.exists():
        raise InputError("already exists; remove it to unpack the archive again", target)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"not a readable zip archive ({exc}); delete it to download it again", zip_path) from None
    with archive:
        members = []
        for info in archive.infolist():
            parts = _member_parts(info.filename, zip_path)
            if parts and not _is_junk(parts):
                members.append((info, parts))
        files = [(info, parts) for info, parts in members if not info.is_dir()]
        if not files:
            raise InputError("the archive holds no files", zip_path)
        tops = {parts[0] for _, parts in members}
        if len(tops) == 1 and all(len(parts) > 1 for _, parts in files):
            strip = 1  # one top-level folder: it becomes expected_folder
            (top,) = tops
            if top != expected_folder:
                log.warning("%s: its top-level folder %r is unpacked as %r", zip_path, top, expected_folder)
        else:
            strip = 0  # members at the top level: they go into expected_folder
        data_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".unpack-{expected_folder}-", dir=data_dir))
        try:
            root = staging / expected_folder
            root.mkdir()
            for info, parts in members:
                path = root.joinpath(*parts[strip:])
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(path, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            os.replace(root, target)
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise InputError(f"corrupt zip archive ({exc}); delete it to download it again", zip_path) from None
        except OSError as exc:
            raise InputError(f"unpacking into {data_dir} failed: {exc.strerror or exc}", zip_path) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _check_archives(archives: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate the ``fetch.archives`` entries; one line naming the entry for a bad one."""
    checked, seen = [], set()
    for i, entry in enumerate(archives):
        key = f"config key fetch.archives[{i}]"
        if not isinstance(entry, Mapping):
            raise InputError(f"{key}: expected a mapping with name and url")
        unknown = set(entry) - {"name", "url", "sha256", "folder"}
        if unknown:
            raise InputError(f"{key}: unknown key(s): {', '.join(sorted(map(str, unknown)))}")
        name, url, folder = entry.get("name"), entry.get("url"), entry.get("folder")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise InputError(f"{key}.name: {name!r} is not a plain file or folder name")
        if folder is not None and (not isinstance(folder, str) or not NAME_PATTERN.match(folder)):
            raise InputError(f"{key}.folder: {folder!r} is not a plain folder name")
        if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise InputError(f"{key}.url: {url!r} is not an http:// or https:// address")
        sha = _check_sha(entry.get("sha256"), f"{key}.sha256")
        where = (folder, name) if folder else (name,)
        if where in seen:
            raise InputError(f"{key}.name: {'/'.join(where)} is listed twice")
        seen.add(where)
        checked.append({"name": name, "url": url, "sha256": sha, "folder": folder})
    if not checked:
        raise InputError(
            "no archives to fetch: list them under fetch.archives in the config "
            "(config/isic2018.yaml has the official ISIC 2018 ones)"
        )
    return checked


def _obtain(entry: Mapping[str, Any], dest: Path, progress: bool, timeout: float, retries: int) -> tuple[str, bool]:
    """Download one entry to ``dest``, or use the file already there if it verifies; return its SHA-256 and
    whether this call downloaded it. A file already there that does not verify is someone's: it is left as
    it is and the fetch stops with one line."""
    if dest.exists():
        actual = sha256_file(dest)
        if entry["sha256"] is None or actual == entry["sha256"]:
            log.info("%s: using the file already in %s", entry["name"], dest)
            return actual, False
        raise InputError(
            f"has SHA-256 {actual}, not the {entry['sha256']} that fetch.archives gives for "
            f"{entry['name']}; nothing was changed: move or delete it, then run again to download "
            "the archive",
            dest,
        )
    log.info("%s: downloading %s", entry["name"], entry["url"])
    return download(entry["url"], dest, entry["sha256"], progress=progress, timeout=timeout, retries=retries), True


def fetch_archives(
    archives: Iterable[Mapping[str, Any]],
    data_dir: str | Path,
    download_dir: str | Path,
    keep_archives: bool = False,
    progress: bool = True,
    timeout: float = 60,
    retries: int = 3,
) -> list[dict[str, Any]]:
    """Download, verify and unpack each archive ``{name, url, sha256}`` into ``data_dir/name``.

    An archive whose folder already exists in ``data_dir`` is skipped, and nothing already in ``data_dir``
    is replaced. An entry with ``folder`` is a plain file (such as the lesion-groupings CSV), placed as
    ``data_dir/folder/name`` after the archives. Downloads go to ``download_dir``; an interrupted one is
    resumed by the next call. A file already in ``download_dir`` under an entry's name is used if it verifies
    and is never deleted or moved; what this call downloads is removed once unpacked unless
    ``keep_archives``. Without ``sha256`` a download is not verified and a warning gives its SHA-256 to put
    in the config. Returns one record per entry.
    """
    entries = _check_archives(archives)
    data_dir, download_dir = Path(data_dir), Path(download_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for entry in sorted(entries, key=lambda e: e["folder"] is not None):  # archives first, then plain files
        name, folder = entry["name"], entry["folder"]
        target = data_dir / folder / name if folder else data_dir / name
        record = {"name": name, "url": entry["url"], "path": str(target), "sha256": None, "verified": False}
        records.append(record)
        if target.exists():
            log.info("%s: %s exists, skipped", name, target)
            record["status"] = "present"
            continue
        dest = download_dir / (name if folder else f"{name}.zip")
        actual, downloaded = _obtain(entry, dest, progress, timeout, retries)
        remove_download = downloaded and not keep_archives  # a file that was there before stays
        record.update(sha256=actual, verified=entry["sha256"] is not None, status="fetched")
        if entry["sha256"] is None:
            log.warning(
                "%s: not verified (no sha256 under fetch.archives in the config); its SHA-256 is %s", name, actual
            )
        else:
            log.info("%s: SHA-256 verified", name)
        if folder:
            target.parent.mkdir(parents=True, exist_ok=True)
            staged = target.with_name(f".{name}.fetch-{os.getpid()}")
            try:
                (shutil.move if remove_download else shutil.copy2)(dest, staged)
                os.link(staged, target)  # unlike a rename, never replaces a file that appeared meanwhile
            finally:
                staged.unlink(missing_ok=True)
        else:
            unpack(dest, data_dir, name)
            if remove_download:
                dest.unlink()
        log.info("%s: in place as %s", name, target)
    return records
