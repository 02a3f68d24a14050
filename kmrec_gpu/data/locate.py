"""Finding a dataset's files: explicit path, KMREC_DATA_DIR, the user cache, GroupLens.

A source is the official zip or its extracted folder. Downloads go to a temporary file
in the cache folder, are checked (digest and zip integrity) and only then renamed into
place, so an interrupted or corrupt download never leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from kmrec_gpu.data.registry import GROUPLENS_URL, DatasetSpec
from kmrec_gpu.errors import ChecksumMismatch, CorruptArchive, DataError, DatasetNotFound
from kmrec_gpu.log import get as _get_logger

_LOG = _get_logger(__name__)

_CHUNK = 1 << 20


def data_dirs() -> list[Path]:
    raw = os.environ.get("KMREC_DATA_DIR", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "kmrec"


def base_url() -> str:
    return os.environ.get("KMREC_MOVIELENS_URL", GROUPLENS_URL)


def file_digests(path: Path) -> dict[str, str]:
    """sha256 and md5 of a file, read in chunks."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


@dataclass
class Source:
    """A located copy of a dataset: a zip archive or a folder holding its files."""

    spec: DatasetSpec
    path: Path
    kind: str  # "zip" | "dir"
    _zip: zipfile.ZipFile | None = field(default=None, repr=False)
    # False: a zip is opened on the first read, so that its digests can still be checked
    # (`kmrec datasets verify`) when it is not a readable zip at all
    open_now: bool = field(default=True, repr=False)

    def __post_init__(self) -> None:
        if self.kind == "zip" and self.open_now:
            self._open()

    def _open(self) -> zipfile.ZipFile:
        if self._zip is None:
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as e:
                raise CorruptArchive(
                    f"{self.path}: not a readable zip archive ({e}); expected the official "
                    f"{self.spec.zip_name} from GroupLens. Delete it and fetch it again."
                ) from None
        return self._zip

    def where(self, member: str) -> str:
        return f"{self.path}:{member}" if self.kind == "zip" else str(self.path / member)

    def read(self, member: str) -> bytes:
        if self.kind == "dir":
            p = self.path / member
            if not p.is_file():
                raise CorruptArchive(f"{self.path}: missing file {member!r} of {self.spec.name}")
            return p.read_bytes()
        zf = self._open()
        names = set(zf.namelist())
        for name in (f"{self.spec.folder}/{member}", member):
            if name in names:
                try:
                    return zf.read(name)
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as e:
                    raise CorruptArchive(
                        f"{self.path}: member {name!r} is corrupt or truncated ({e})"
                    ) from None
        raise CorruptArchive(
            f"{self.path}: missing member {self.spec.folder}/{member}; expected the "
            f"official {self.spec.zip_name} layout"
        )

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def verify_archive(self) -> list[dict]:
        """Digest checks of the source itself (the zip, or the folder's known files)."""
        checks = []
        if self.kind == "zip":
            got = file_digests(self.path)
            # sha256 always comes first, expected or not: it names the source in results
            checks.append(_check(str(self.path), "sha256", self.spec.zip_sha256, got["sha256"]))
            if self.spec.zip_md5:
                checks.append(_check(str(self.path), "md5", self.spec.zip_md5, got["md5"]))
        else:
            for member, want in sorted(self.spec.member_sha256.items()):
                p = self.path / member
                got = file_digests(p)["sha256"] if p.is_file() else None
                checks.append(_check(str(p), "sha256", want, got))
        return checks


def _check(what: str, algo: str, want: str | None, got: str | None) -> dict:
    ok = None if want is None else (got == want)
    return {"file": what, "algorithm": algo, "expected": want, "actual": got, "ok": ok}


def _candidates(spec: DatasetSpec, root: Path) -> list[Path]:
    out = [root / spec.zip_name, root / spec.name / spec.zip_name, root / spec.name]
    if spec.folder != spec.name:
        out.append(root / spec.folder)
    out.append(root / spec.name / spec.folder)
    return out


def _as_source(spec: DatasetSpec, p: Path, open_now: bool = True) -> Source | None:
    main = spec.files["ratings"]
    if p.is_file():
        return Source(spec, p, "zip", open_now=open_now)
    if p.is_dir():
        if (p / main).is_file():
            return Source(spec, p, "dir")
        if (p / spec.folder / main).is_file():
            return Source(spec, p / spec.folder, "dir")
        if (p / spec.zip_name).is_file():
            return Source(spec, p / spec.zip_name, "zip", open_now=open_now)
    return None


def locate(spec: DatasetSpec, path: str | Path | None = None, *, download: bool = True,
           open_now: bool = True) -> Source:
    """Find ``spec``'s files, downloading them into the cache as a last resort.

    ``open_now=False`` defers opening a zip to its first read (a zip that is not readable
    is then found, and its digests checked, rather than refused here)."""
    if path is not None:
        p = Path(path).expanduser()
        src = _as_source(spec, p, open_now)
        if src is None:
            raise DatasetNotFound(
                f"{spec.name}: {p} is neither {spec.zip_name} nor a folder holding "
                f"{spec.files['ratings']}"
            )
        return src
    looked: list[str] = []
    for root in data_dirs():
        for cand in _candidates(spec, root):
            looked.append(str(cand))
            src = _as_source(spec, cand, open_now)
            if src is not None:
                return src
    cached = cache_dir() / spec.zip_name
    looked.append(str(cached))
    if cached.is_file():
        return Source(spec, cached, "zip", open_now=open_now)
    why = _why_no_download(spec, download)
    if why is None:
        try:
            return Source(spec, fetch(spec, cache_dir()), "zip")
        except DatasetNotFound as e:
            why = str(e)
    raise DatasetNotFound(_not_found_message(spec, looked, why))


def _why_no_download(spec: DatasetSpec, download: bool) -> str | None:
    if not spec.downloadable:
        return "it is not a GroupLens release, so it is never downloaded"
    if not download:
        return "downloading was turned off"
    if os.environ.get("KMREC_OFFLINE", "") not in ("", "0"):
        return "KMREC_OFFLINE is set"
    return None


def _not_found_message(spec: DatasetSpec, looked: list[str], why: str) -> str:
    where = "\n  ".join(looked) if looked else "(KMREC_DATA_DIR is not set)"
    fix = (
        f"Put {spec.zip_name} (from {spec.url(base_url())}) or its extracted folder in a "
        f"folder listed in KMREC_DATA_DIR, or in {cache_dir()}"
        if spec.downloadable
        else f"Put the folder {spec.folder}/ holding {spec.files['ratings']} in a folder "
        "listed in KMREC_DATA_DIR"
    )
    synth = (
        f" To run the same job without it, use a synthetic preset of the same size: "
        f"--dataset synthetic-{spec.name}."
        if spec.downloadable
        else ""
    )
    return (
        f"dataset {spec.name!r} not found. Looked in:\n  {where}\n"
        f"Not downloaded: {why}.\n{fix}.{synth}"
    )


def writable_folder(path: Path, what: str) -> Path:
    """``path`` as a folder that can be written, made if missing, or a project error that
    says which folder, why, and what decides where it is (``XDG_CACHE_HOME``)."""
    hint = (f" (it comes from XDG_CACHE_HOME={os.environ['XDG_CACHE_HOME']!r})"
            if os.environ.get("XDG_CACHE_HOME") else "")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DataError(f"{what} {path} cannot be a folder: a file stands in its way{hint}"
                        ) from None
    except PermissionError:
        raise DataError(f"{what} {path} cannot be created: permission denied{hint}") from None
    if not path.is_dir():
        raise DataError(f"{what} {path} is not a folder{hint}")
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataError(f"{what} {path} is not writable{hint}; point XDG_CACHE_HOME at a "
                        "writable folder, or put the zip in a KMREC_DATA_DIR folder")
    return path


def fetch(spec: DatasetSpec, dest_dir: Path, url: str | None = None) -> Path:
    """Download ``spec``'s zip into ``dest_dir``, verified, atomically; return its path."""
    url = url or spec.url(base_url())
    writable_folder(dest_dir, "the download cache")
    final = dest_dir / spec.zip_name
    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{spec.zip_name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        sha, md5 = hashlib.sha256(), hashlib.md5()
        with os.fdopen(fd, "wb") as out:
            try:
                resp = urllib.request.urlopen(url, timeout=30)
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise DatasetNotFound(f"download of {url} failed: {e}") from None
            with resp, _progress(spec.zip_name, resp.headers.get("Content-Length")) as advance:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    sha.update(chunk)
                    md5.update(chunk)
                    advance(len(chunk))
        _check_download(spec, url, tmp, sha.hexdigest(), md5.hexdigest())
        os.replace(tmp, final)
        return final
    finally:
        tmp.unlink(missing_ok=True)


def _check_download(spec: DatasetSpec, url: str, tmp: Path, sha: str, md5: str) -> None:
    if spec.zip_sha256:
        algo, want, got = "sha256", spec.zip_sha256, sha
    elif spec.zip_md5:
        algo, want, got = "md5", spec.zip_md5, md5
    else:
        algo, want, got = "md5", _published_md5(url), md5
    if got != want:
        raise ChecksumMismatch(
            f"download of {url}: {algo} {got}, expected {want}; the file was discarded"
        )
    try:
        with zipfile.ZipFile(tmp) as z:
            bad = z.testzip()
    except zipfile.BadZipFile as e:
        raise CorruptArchive(f"download of {url} is not a valid zip ({e}); discarded") from None
    if bad is not None:
        raise CorruptArchive(f"download of {url}: member {bad} fails its CRC; discarded")


def _published_md5(url: str) -> str:
    try:
        with urllib.request.urlopen(url + ".md5", timeout=30) as r:
            return r.read().decode().split()[0].strip().lower()
    except (urllib.error.URLError, OSError, IndexError, UnicodeDecodeError) as e:
        raise DatasetNotFound(
            f"no checksum is known for {url} and {url}.md5 could not be read ({e})"
        ) from None


class _progress:
    """A rich progress bar on a terminal; silent otherwise (CI logs stay readable)."""

    def __init__(self, label: str, total: str | None) -> None:
        self.label, self.total = label, int(total) if total else None
        self._bar = None

    def __enter__(self):
        if sys.stderr.isatty():
            from rich.progress import Progress

            self._bar = Progress(transient=True)
            self._bar.start()
            task = self._bar.add_task(f"downloading {self.label}", total=self.total)
            return lambda n: self._bar.advance(task, n)
        _LOG.info(f"downloading {self.label} ...")
        return lambda n: None

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
