"""A content-addressed artifact store: an artifact is stored once under its SHA-256, whatever its name.

    store = ArtifactStore.from_config()           # MWH_ARTIFACT_STORE, default <project>/artifacts
    stored = store.put("model.pkl")                # -> Stored(uri, checksum="sha256:<hex>", size)
    store.verify(stored.uri, stored.checksum)

Layout under the root: ``sha256/<first two hex>/<hex><suffix>``. A local directory needs nothing
extra; any other URL (s3://, gs://, memory://, ...) goes through fsspec, imported only then.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from market_warehouse.config import project_dir

CHUNK = 1 << 20


@dataclass(frozen=True)
class Stored:
    uri: str
    checksum: str  # "sha256:<hex>"
    size: int


class ArtifactError(Exception):
    """The artifact cannot be read, stored, or does not match its checksum."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read artifact: {exc.strerror}") from exc
    return h.hexdigest()


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


class ArtifactStore:
    def __init__(self, root: str | Path):
        self.root = str(root)
        self.local = _is_local(self.root)
        if self.local:
            self.root = str(Path(self.root.removeprefix("file://")).expanduser().resolve())

    @classmethod
    def from_config(cls, url: str | None = None) -> ArtifactStore:
        return cls(url or os.environ.get("MWH_ARTIFACT_STORE") or project_dir() / "artifacts")

    def _fs(self):
        try:  # deferred on purpose: fsspec is optional, needed only for a non-local store
            import fsspec  # deferred: optional, only remote artifact stores need it
        except ImportError as exc:
            raise ArtifactError(f"artifact store {self.root} needs fsspec (pip install fsspec and the "
                                f"filesystem's package, e.g. s3fs); a local directory works without it") from exc
        try:
            fs, _, paths = fsspec.get_fs_token_paths(self.root)
        except ImportError as exc:  # fsspec is there, the store's filesystem package (e.g. s3fs) is not
            raise ArtifactError(f"artifact store {self.root} needs the filesystem's package, not installed: "
                                f"{exc}") from exc
        return fs, paths[0].rstrip("/")

    @staticmethod
    def _relative(digest: str, suffix: str) -> str:
        return f"sha256/{digest[:2]}/{digest}{suffix}"

    def put(self, path: str | Path) -> Stored:
        src = Path(path)
        if not src.is_file():
            raise ArtifactError(f"{src}: artifact not found (or not a file)")
        digest = sha256_file(src)
        suffix = "".join(src.suffixes)[-20:]
        rel = self._relative(digest, suffix)
        size = src.stat().st_size
        if self.local:
            dest = Path(self.root) / rel
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                # Copy to a temporary name, then rename: a reader never sees half an artifact.
                fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-")
                os.close(fd)
                try:
                    shutil.copyfile(src, tmp)
                    os.replace(tmp, dest)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
            return Stored(uri=str(dest), checksum=f"sha256:{digest}", size=size)
        fs, base = self._fs()
        dest_path = f"{base}/{rel}"
        if not fs.exists(dest_path):
            fs.makedirs(dest_path.rsplit("/", 1)[0], exist_ok=True)
            fs.put_file(str(src), dest_path)
        return Stored(uri=fs.unstrip_protocol(dest_path), checksum=f"sha256:{digest}", size=size)

    def open(self, uri: str):
        if _is_local(uri):
            return open(uri.removeprefix("file://"), "rb")
        fs, _ = self._fs()
        return fs.open(uri, "rb")

    def verify(self, uri: str, checksum: str) -> None:
        h = hashlib.sha256()
        try:
            with self.open(uri) as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
        except OSError as exc:
            raise ArtifactError(f"{uri}: cannot read artifact: {exc}") from exc
        if f"sha256:{h.hexdigest()}" != checksum:
            raise ArtifactError(f"{uri}: checksum mismatch: stored sha256:{h.hexdigest()}, expected {checksum}")
