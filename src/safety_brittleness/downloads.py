"""Data files fetched by URL and pinned by sha256: resumable, verified, and written atomically.

A transfer writes to '<destination>.part'. When a transfer breaks off, the next call requests
only the missing bytes (an HTTP Range request) and appends them. The file gets its
final name only after its sha256 matches the pin, so a file under the final name is always the
pinned one. A local copy of the file can stand in for the URL, for machines without network.
"""

from __future__ import annotations

import logging
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from safety_brittleness.provenance import sha256_file

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20


class DownloadError(RuntimeError):
    """A pinned data file cannot be fetched, or its content does not match its sha256."""


def _partial(destination: Path) -> Path:
    return destination.with_name(destination.name + ".part")


def _finish(partial: Path, destination: Path, sha256: str, origin: str, key: str) -> Path:
    actual = sha256_file(partial)
    if actual != sha256:
        partial.unlink()
        raise DownloadError(
            f"sha256 mismatch for {origin}: expected {sha256}, got {actual}. The file changed at its source "
            f"or the pin is wrong; check the source and set {key}.sha256 to the hash of the file you trust"
        )
    os.replace(partial, destination)
    log.info("%s verified (sha256 %s) and written to %s", origin, sha256, destination)
    return destination


def _transfer(url: str, partial: Path, timeout: float, key: str) -> None:
    offset = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            return   # the partial file already contains every byte, so the hash check decides
        raise DownloadError(f"{url} returned HTTP {error.code} ({error.reason}); check {key}.url") from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(
            f"cannot reach {url} ({reason}). Without network access, download the file elsewhere and set "
            f"{key}.local_copy to its path; the sha256 pin still applies"
        ) from error
    with response:
        if offset and response.status != 206:
            log.info("%s ignored the range request; starting the transfer again", url)
            offset = 0
        length = response.headers.get("Content-Length")
        total = int(length) + offset if length is not None else None
        mode = "ab" if offset else "wb"
        try:
            with open(partial, mode) as handle, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, desc=partial.name[:-5], mininterval=2.0,
            ) as progress:
                while block := response.read(CHUNK_SIZE):
                    handle.write(block)
                    progress.update(len(block))
        except (OSError, urllib.error.URLError) as error:
            raise DownloadError(
                f"the transfer of {url} broke off after {partial.stat().st_size} bytes ({error}); rerun to resume it"
            ) from error
    if total is not None and partial.stat().st_size < total:
        raise DownloadError(
            f"the transfer of {url} broke off after {partial.stat().st_size} of {total} bytes; rerun to resume it"
        )


def fetch(
    url: str | None, sha256: str, destination: str | Path, local_copy: str | Path | None = None,
    timeout: float = 60.0, key: str = "download",
) -> Path:
    """Place the file pinned by `sha256` at `destination`, from `local_copy` when given, else from `url`.

    `key` names the parameter entry in error messages. A broken transfer leaves '<destination>.part'
    for the next call to resume; a hash mismatch removes it and raises DownloadError.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    sha256 = sha256.lower()
    if destination.is_file() and sha256_file(destination) == sha256:
        return destination
    partial = _partial(destination)
    if local_copy is not None:
        source = Path(local_copy)
        if not source.is_file():
            raise DownloadError(f"{key}.local_copy = '{source}' is not a file; give the path of the downloaded file")
        shutil.copyfile(source, partial)
        return _finish(partial, destination, sha256, str(source), key)
    if not url:
        raise DownloadError(f"{key} has neither a url nor a local_copy; give one of them")
    _transfer(url, partial, timeout, key)
    return _finish(partial, destination, sha256, url, key)
