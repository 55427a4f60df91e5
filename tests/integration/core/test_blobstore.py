"""Blob store behaviour, the same tests against local disk and a real S3-compatible server."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forgeline.core.blobstore import (
    BlobInfo,
    BlobNotFound,
    BlobStore,
    LocalBlobStore,
    S3BlobStore,
    get_blob_store,
    validate_key,
)
from forgeline.core.settings import Settings
from tests.support.s3rver import S3rver, require_s3rver, running_s3rver

MiB = 1024 * 1024


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3rver]:
    require_s3rver()
    with running_s3rver(tmp_path_factory.mktemp("s3rver")) as server:
        yield server


def make_s3_store(server: S3rver, prefix: str = "") -> S3BlobStore:
    # A fresh bucket per store keeps tests independent and exercises bucket creation.
    return S3BlobStore(
        endpoint_url=server.endpoint_url,
        bucket=f"blobs-{uuid.uuid4().hex[:16]}",
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        region=server.region,
        prefix=prefix,
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    return make_s3_store(request.getfixturevalue("s3_server"))


def raw_entries(store: BlobStore) -> list[str]:
    """Everything the backend holds, bookkeeping included, read behind the store's back."""
    if isinstance(store, LocalBlobStore):
        if not store.root.exists():
            return []
        return sorted(
            str(Path(dirpath, name).relative_to(store.root))
            for dirpath, _dirs, files in os.walk(store.root)
            for name in files
        )
    assert isinstance(store, S3BlobStore)
    try:
        response = store.client.list_objects_v2(Bucket=store.bucket)
    except store.client.exceptions.NoSuchBucket:
        return []
    return sorted(item["Key"] for item in response.get("Contents", []))


# -- sources -----------------------------------------------------------------------------


class SourceFailed(Exception):
    pass


class GeneratedSource(io.RawIOBase):
    """A file-like source that makes its bytes on demand and remembers how it was read.

    It never holds more than one requested chunk, so a store that streams keeps memory
    flat, and `largest_read` shows how much a store asked for at once.
    """

    def __init__(
        self,
        total: int,
        *,
        fail_after: int | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self.total = total
        self.fail_after = fail_after
        self.on_progress = on_progress
        self.position = 0
        self.largest_read = 0
        self.unbounded_reads = 0
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            self.unbounded_reads += 1
            size = self.total - self.position
        self.largest_read = max(self.largest_read, size)
        if self.fail_after is not None and self.position >= self.fail_after:
            raise SourceFailed(f"source broke after {self.position} bytes")
        size = min(size, self.total - self.position)
        chunk = _pattern(self.position, size)
        self.position += len(chunk)
        self.digest.update(chunk)
        if self.on_progress is not None:
            self.on_progress(self.position)
        return chunk

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _pattern(offset: int, size: int) -> bytes:
    """Deterministic, non-repeating-looking bytes for [offset, offset + size)."""
    block = 4096
    out = bytearray()
    first = offset - offset % block
    for start in range(first, offset + size, block):
        seed = hashlib.sha256(start.to_bytes(8, "big")).digest()
        out += seed * (block // len(seed))
    skip = offset - first
    return bytes(out[skip : skip + size])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- behaviour shared by every backend ------------------------------------------------------


def test_round_trip(store: BlobStore) -> None:
    data = os.urandom(300_000)
    store.put("builds/1/artifact.zip", data)

    assert store.read_bytes("builds/1/artifact.zip") == data
    with store.open("builds/1/artifact.zip") as stream:
        assert stream.read() == data
    chunks = list(store.iter_chunks("builds/1/artifact.zip", chunk_size=65_536))
    assert b"".join(chunks) == data
    assert all(0 < len(chunk) <= 65_536 for chunk in chunks)
    assert len(chunks) == 5


def test_put_reports_size_and_sha256_and_stat_agrees(store: BlobStore) -> None:
    data = b"forgeline blob contents\n" * 1000
    info = store.put("logs/build.txt", io.BytesIO(data))

    expected = BlobInfo(key="logs/build.txt", size=len(data), sha256=sha256(data))
    assert info == expected
    assert store.stat("logs/build.txt") == expected
    assert store.exists("logs/build.txt")


def test_empty_blob(store: BlobStore) -> None:
    info = store.put("empty", b"")

    assert info == BlobInfo(key="empty", size=0, sha256=sha256(b""))
    assert store.stat("empty") == info
    assert store.read_bytes("empty") == b""
    assert list(store.iter_chunks("empty")) == []


def test_streams_a_20_mb_input_without_reading_it_whole(store: BlobStore) -> None:
    total = 20 * MiB
    source = GeneratedSource(total)

    info = store.put("big/input.bin", source)

    assert source.unbounded_reads == 0
    assert source.largest_read <= 8 * MiB < total
    assert info == BlobInfo("big/input.bin", total, source.digest.hexdigest())
    assert store.stat("big/input.bin") == info
    read_back = hashlib.sha256()
    size = 0
    for chunk in store.iter_chunks("big/input.bin", chunk_size=MiB):
        assert len(chunk) <= MiB
        read_back.update(chunk)
        size += len(chunk)
    assert (size, read_back.hexdigest()) == (total, info.sha256)


def test_failed_put_leaves_no_blob_and_no_temp_data(store: BlobStore) -> None:
    # 12 MiB in: past the first multipart part on S3 and many chunks on disk.
    source = GeneratedSource(20 * MiB, fail_after=12 * MiB)

    with pytest.raises(SourceFailed):
        store.put("broken/blob", source)

    assert source.position >= 12 * MiB
    assert store.stat("broken/blob") is None
    assert not store.exists("broken/blob")
    assert list(store.list("")) == []
    assert raw_entries(store) == []


def test_failed_overwrite_keeps_the_previous_blob(store: BlobStore) -> None:
    original = store.put("release.tar", b"version one")

    with pytest.raises(SourceFailed):
        store.put("release.tar", GeneratedSource(4 * MiB, fail_after=2 * MiB))

    assert store.stat("release.tar") == original
    assert store.read_bytes("release.tar") == b"version one"
    assert [info.key for info in store.list("")] == ["release.tar"]


def test_readers_see_the_old_blob_until_a_put_completes(store: BlobStore) -> None:
    old = store.put("site/index.html", b"old page")
    seen: list[tuple[BlobInfo | None, bytes, bool]] = []

    def look(position: int) -> None:
        if position >= 3 * MiB and not seen:
            seen.append(
                (
                    store.stat("site/index.html"),
                    store.read_bytes("site/index.html"),
                    store.exists("site/new.html"),
                )
            )

    source = GeneratedSource(6 * MiB, on_progress=look)
    new = store.put("site/index.html", source)

    assert seen == [(old, b"old page", False)]
    assert store.stat("site/index.html") == new
    assert new.sha256 == source.digest.hexdigest()


def test_overwrite_replaces_content_and_digest(store: BlobStore) -> None:
    store.put("cache/key", b"first")
    second = store.put("cache/key", b"second, longer")

    assert second == BlobInfo("cache/key", 14, sha256(b"second, longer"))
    assert store.stat("cache/key") == second
    assert store.read_bytes("cache/key") == b"second, longer"
    assert [info.key for info in store.list("cache/")] == ["cache/key"]


def test_delete_removes_the_blob_and_ignores_missing(store: BlobStore) -> None:
    store.put("a/b/c", b"x")
    store.put("a/keep", b"y")

    store.delete("a/b/c")
    store.delete("a/b/c")
    store.delete("never/existed")

    assert not store.exists("a/b/c")
    assert store.stat("a/b/c") is None
    with pytest.raises(BlobNotFound):
        store.open("a/b/c")
    assert [info.key for info in store.list("")] == ["a/keep"]
    store.delete("a/keep")
    assert raw_entries(store) == []


def test_list_by_prefix(store: BlobStore) -> None:
    contents = {
        "a/1": b"one",
        "a/2/x": b"two-x",
        "a-c": b"dash",
        "ab": b"ab",
        "b/1": b"b-one",
    }
    for key, data in contents.items():
        store.put(key, data)

    everything = [info.key for info in store.list("")]
    if isinstance(store, LocalBlobStore):
        # Key order, as AWS S3 lists; s3rver lists in its directory walk's order instead.
        assert everything == ["a-c", "a/1", "a/2/x", "ab", "b/1"]

    def keys(prefix: str) -> list[str]:
        return sorted(info.key for info in store.list(prefix))

    assert keys("") == ["a-c", "a/1", "a/2/x", "ab", "b/1"]
    assert keys("a/") == ["a/1", "a/2/x"]
    assert keys("a") == ["a-c", "a/1", "a/2/x", "ab"]
    assert keys("a/2") == ["a/2/x"]
    assert keys("b/1") == ["b/1"]
    assert keys("zzz") == []
    assert keys("a/3/") == []
    assert sorted(store.list("a/"), key=lambda info: info.key) == [
        BlobInfo("a/1", 3, sha256(b"one")),
        BlobInfo("a/2/x", 5, sha256(b"two-x")),
    ]


def test_delete_prefix(store: BlobStore) -> None:
    for key in ("builds/1/a", "builds/1/b/c", "builds/10/a", "builds/2/a"):
        store.put(key, key.encode())

    assert store.delete_prefix("builds/1/") == 2
    assert sorted(info.key for info in store.list("")) == ["builds/10/a", "builds/2/a"]
    assert store.delete_prefix("builds/nothing/") == 0
    assert store.delete_prefix("") == 2
    assert raw_entries(store) == []


BAD_KEYS = [
    "",
    "/etc/passwd",
    "../outside",
    "a/../../outside",
    "a/..",
    "..",
    ".",
    "a/./b",
    "a//b",
    "a/",
    "a\x00b",
    "a\\..\\b",
    ".blobstore-meta/a",
    "a/.blobstore-tmp-1",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unsafe_keys_are_rejected(store: BlobStore, tmp_path: Path, key: str) -> None:
    before = sorted(str(path) for path in tmp_path.rglob("*"))

    with pytest.raises(ValueError):
        store.put(key, b"payload")
    with pytest.raises(ValueError):
        store.open(key)
    with pytest.raises(ValueError):
        store.stat(key)
    with pytest.raises(ValueError):
        store.exists(key)
    with pytest.raises(ValueError):
        store.delete(key)
    with pytest.raises(ValueError):
        store.iter_chunks(key)

    assert sorted(str(path) for path in tmp_path.rglob("*")) == before
    assert raw_entries(store) == []


@pytest.mark.parametrize("prefix", ["/", "/a", "../", "a/../", "a//", "a\x00"])
def test_unsafe_prefixes_are_rejected(store: BlobStore, prefix: str) -> None:
    with pytest.raises(ValueError):
        list(store.list(prefix))
    with pytest.raises(ValueError):
        store.delete_prefix(prefix)


def test_missing_blob_raises_blob_not_found(store: BlobStore) -> None:
    store.put("present/file", b"x")

    for key in ("missing", "present/missing", "present", "present/file/below"):
        with pytest.raises(BlobNotFound) as caught:
            store.open(key)
        assert isinstance(caught.value, KeyError)
        with pytest.raises(BlobNotFound):
            store.iter_chunks(key)  # fails at the call, before any iteration
        with pytest.raises(BlobNotFound):
            store.read_bytes(key)
        assert store.stat(key) is None
        assert not store.exists(key)


def test_concurrent_puts_of_one_key_leave_one_complete_blob(store: BlobStore) -> None:
    payloads = [bytes([index]) * (512 * 1024 + index) for index in range(6)]
    errors: list[BaseException] = []

    def write(data: bytes) -> None:
        try:
            store.put("shared/key", data)
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(data,)) for data in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    final = store.read_bytes("shared/key")
    assert final in payloads
    assert store.stat("shared/key") == BlobInfo("shared/key", len(final), sha256(final))
    assert [info.key for info in store.list("")] == ["shared/key"]


# -- local backend specifics -----------------------------------------------------------------


def test_local_put_keeps_memory_flat(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    tracemalloc.start()
    try:
        store.put("big", GeneratedSource(20 * MiB))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A few chunks' worth (the source's own buffers included), far below the input's size.
    assert peak < 8 * MiB


def test_local_stat_uses_the_stored_digest(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    info = store.put("doc", b"AAAA")
    path = store.root / "doc"
    st = path.stat()

    # Same inode, size and mtime: only a re-hash could notice this edit.
    with open(path, "r+b") as stream:
        stream.write(b"BBBB")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    assert store.stat("doc") == info


def test_local_stat_rehashes_a_file_replaced_behind_its_back(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    store.put("doc", b"original")
    replacement = store.root / "replacement"
    replacement.write_bytes(b"changed outside the store")
    os.replace(replacement, store.root / "doc")

    assert store.stat("doc") == BlobInfo(
        "doc", len(b"changed outside the store"), sha256(b"changed outside the store")
    )


def test_local_layout_keeps_bookkeeping_out_of_listings(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    store.put("reports/a.sha256", b"a checksum file is an ordinary blob")
    store.put("reports/a", b"a")

    assert (store.root / "reports" / "a").read_bytes() == b"a"
    assert [info.key for info in store.list("")] == ["reports/a", "reports/a.sha256"]
    assert raw_entries(store) == [
        ".blobstore-meta/reports/a",
        ".blobstore-meta/reports/a.sha256",
        "reports/a",
        "reports/a.sha256",
    ]


@given(st.text(alphabet=st.sampled_from(["a", "b", ".", "/", "\\", "\x00"]), max_size=12))
def test_accepted_keys_always_stay_inside_the_root(key: str) -> None:
    root = "/srv/blobs"
    try:
        validate_key(key)
    except ValueError:
        return
    resolved = os.path.normpath(os.path.join(root, key))
    assert resolved.startswith(root + "/")
    assert resolved == os.path.join(root, key)


# -- s3 backend specifics --------------------------------------------------------------------


def test_s3_large_put_uses_multipart_upload(s3_server: S3rver) -> None:
    store = make_s3_store(s3_server)
    parts: list[int] = []
    store.client.meta.events.register(
        "before-parameter-build.s3.UploadPart",
        lambda params, **_: parts.append(params["PartNumber"]),
    )

    info = store.put("big", GeneratedSource(20 * MiB))

    assert sorted(parts) == [1, 2, 3]
    assert store.stat("big") == info
    head = store.client.head_object(Bucket=store.bucket, Key="big")
    assert head["Metadata"]["sha256"] == info.sha256


def test_s3_store_prefix_scopes_keys(s3_server: S3rver) -> None:
    store = make_s3_store(s3_server, prefix="tenant/blobs/")
    store.put("x/y", b"data")

    assert raw_entries(store) == ["tenant/blobs/x/y"]
    assert [info.key for info in store.list("")] == ["x/y"]
    assert store.read_bytes("x/y") == b"data"


def test_s3_stat_hashes_objects_written_by_others(s3_server: S3rver) -> None:
    store = make_s3_store(s3_server)
    store.put("seed", b"")  # creates the bucket
    store.client.put_object(Bucket=store.bucket, Key="foreign", Body=b"from elsewhere")

    assert store.stat("foreign") == BlobInfo("foreign", 14, sha256(b"from elsewhere"))


# -- factory -------------------------------------------------------------------------------


def test_factory_builds_a_local_store_under_the_data_dir(tmp_path: Path) -> None:
    store = get_blob_store(Settings(data_dir=tmp_path, blob_store="local"))

    assert isinstance(store, LocalBlobStore)
    assert store.root == (tmp_path / "blobs").absolute()
    store.put("k", b"v")
    assert (tmp_path / "blobs" / "k").read_bytes() == b"v"


def test_factory_builds_an_s3_store_from_settings(s3_server: S3rver, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        blob_store="s3",
        s3_endpoint_url=s3_server.endpoint_url,
        s3_bucket=f"factory-{uuid.uuid4().hex[:12]}",
        s3_access_key_id=s3_server.access_key_id,
        s3_secret_access_key=s3_server.secret_access_key,
        s3_region=s3_server.region,
    )
    store = get_blob_store(settings)

    assert isinstance(store, S3BlobStore)
    assert store.bucket == settings.s3_bucket
    store.put("k", b"v")
    assert store.read_bytes("k") == b"v"
    assert raw_entries(store) == ["k"]
