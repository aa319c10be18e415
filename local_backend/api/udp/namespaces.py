"""Find the definition of a process called with a ``namespace``.

A namespace is a URL, a local JSON file or folder, or resolves through the offline catalogue given to
``s1ndvi serve --udp-catalogue DIR``.

* A URL whose file name (``.../mogpr_s1s2.json``) is an entry of the catalogue folder resolves to that entry, offline;
  the substitution is logged at INFO.
* Any other ``http(s)://`` URL is fetched (timeout :data:`FETCH_TIMEOUT_S`, at most :data:`MAX_BYTES`); without
  network the request fails with ``ProcessNamespaceInvalid`` saying so and how to work offline.
* Anything else is a local path: a UDP JSON file, or a folder holding ``<process_id>.json``.

A definition is a single openEO process (``{"id", "parameters", "process_graph", ...}``) or a process listing
(``{"processes": [...]}``) in which the process is looked up by id.
"""

import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from openeo_driver.errors import OpenEOApiException

_log = logging.getLogger(__name__)

__all__ = ["FETCH_TIMEOUT_S", "MAX_BYTES", "NamespaceCatalogue", "ProcessNamespaceInvalid"]

FETCH_TIMEOUT_S = 15.0
"""Seconds a namespace URL may take to answer."""
MAX_BYTES = 16 * 2**20
"""Largest UDP definition read from a URL or file."""


class ProcessNamespaceInvalid(OpenEOApiException):
    """The namespace of a process cannot be resolved (unreachable URL, missing file, no such process in it)."""

    status_code = 400
    code = "ProcessNamespaceInvalid"


def _is_url(namespace: str) -> bool:
    return urllib.parse.urlparse(namespace).scheme in ("http", "https")


def _pick(document: Any, process_id: str, where: str) -> dict[str, Any]:
    """The process ``process_id`` of a definition document (single process or ``{"processes": [...]}``)."""
    candidates = document.get("processes") if isinstance(document, dict) and "processes" in document else [document]
    if not isinstance(candidates, list):
        raise ProcessNamespaceInvalid(message=f"{where} is not an openEO process definition (an object with "
                                              f"'id' and 'process_graph', or a listing of such under 'processes').")
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("id") == process_id:
            return candidate
    ids = [c.get("id") for c in candidates if isinstance(c, dict)]
    raise ProcessNamespaceInvalid(message=f"{where} defines no process {process_id!r} (it defines {ids}).")


class NamespaceCatalogue:
    """Resolves ``namespace`` values to process definitions; fetched URLs are cached for the server's lifetime."""

    def __init__(self, catalogue_dir: Path | None = None, allow_network: bool = True) -> None:
        self.catalogue_dir = Path(catalogue_dir) if catalogue_dir is not None else None
        if self.catalogue_dir is not None and not self.catalogue_dir.is_dir():
            raise FileNotFoundError(f"UDP catalogue folder {self.catalogue_dir} does not exist.")
        self.allow_network = allow_network
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()

    def entries(self) -> list[str]:
        """File names of the offline catalogue (``[]`` without one)."""
        if self.catalogue_dir is None:
            return []
        return sorted(p.name for p in self.catalogue_dir.glob("*.json"))

    def resolve(self, process_id: str, namespace: str) -> dict[str, Any]:
        """The definition of ``process_id`` in ``namespace``.

        Raises:
            ProcessNamespaceInvalid: when the namespace cannot be read or lacks the process.
        """
        if _is_url(namespace):
            return _pick(self._url_document(namespace), process_id, f"Namespace {namespace}")
        path = Path(namespace)
        if path.is_dir():
            path = path / f"{process_id}.json"
        return _pick(self._file_document(path, f"namespace {namespace!r}"), process_id, f"Namespace {namespace}")

    def _file_document(self, path: Path, what: str) -> Any:
        if not path.is_file():
            raise ProcessNamespaceInvalid(message=f"No UDP JSON file at {path} ({what}).")
        if path.stat().st_size > MAX_BYTES:
            raise ProcessNamespaceInvalid(message=f"{path} is larger than {MAX_BYTES // 2**20} MiB.")
        try:
            return json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProcessNamespaceInvalid(message=f"Cannot read {path} as JSON ({what}): {exc}") from exc

    def _url_document(self, url: str) -> Any:
        name = Path(urllib.parse.urlparse(url).path).name
        if self.catalogue_dir is not None and name and (self.catalogue_dir / name).is_file():
            _log.info("Namespace %s resolved to the catalogue entry %s", url, self.catalogue_dir / name)
            return self._file_document(self.catalogue_dir / name, f"catalogue entry for {url}")
        with self._lock:
            if url in self._cache:
                return self._cache[url]
        if not self.allow_network:
            raise ProcessNamespaceInvalid(message=f"Namespace {url} is not in the offline UDP catalogue "
                                                  f"({self.entries()}) and this server does not fetch URLs.")
        document = self._fetch(url)
        with self._lock:
            self._cache[url] = document
        return document

    def _fetch(self, url: str) -> Any:
        hint = ("; without network, save the JSON into a folder and pass it as `s1ndvi serve --udp-catalogue DIR` "
                "(a URL with the same file name then resolves to it)")
        try:
            with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:  # noqa: S310 - http(s) only
                body = response.read(MAX_BYTES + 1)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ProcessNamespaceInvalid(message=f"Cannot fetch namespace {url}: {reason}{hint}.") from exc
        if len(body) > MAX_BYTES:
            raise ProcessNamespaceInvalid(message=f"Namespace {url} is larger than {MAX_BYTES // 2**20} MiB.")
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProcessNamespaceInvalid(message=f"Namespace {url} is not JSON: {exc}") from exc
        _log.info("Fetched process namespace %s (%d bytes)", url, len(body))
        return document
