"""Moves objects through localproc's storage layer the way a job does, in a process of its own so
that it can be timed whole, like `aws s3 cp --recursive`.

    python benchmarks/transfer_worker.py download ENDPOINT s3://BUCKET/PREFIX/ DEST_DIR
    python benchmarks/transfer_worker.py upload ENDPOINT SOURCE_DIR s3://BUCKET/PREFIX/

download: `list_objects` then `download_file` for each object in a thread pool of localproc's
staging size (`localproc.transfer.staging.DOWNLOAD_WORKERS`), as `stage_inputs` does. upload:
every file below SOURCE_DIR through `upload_file` in a pool of `UPLOAD_WORKERS`, as
`upload_outputs` does. Prints one JSON line: objects, bytes and the seconds spent after start-up.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def main(argv: list[str]) -> int:
    mode, endpoint, source, dest = argv
    started = time.perf_counter()
    from localproc.storage import open_store, parse_s3_uri

    try:
        from localproc.transfer.staging import DOWNLOAD_WORKERS as download_workers
    except ImportError:  # renamed or moved: localproc's documented default
        download_workers = 8
    try:
        from localproc.transfer.upload import UPLOAD_WORKERS as upload_workers
    except ImportError:
        upload_workers = 8

    store = open_store(None, endpoint, "us-east-1")
    imported = time.perf_counter()
    if mode == "download":
        bucket, prefix = parse_s3_uri(source)
        objects = [o for o in store.list_objects(bucket, prefix) if not o.key.endswith("/")]
        root = Path(dest)

        def download(obj: object) -> None:
            store.download_file(obj, root / obj.key[len(prefix) :])  # type: ignore[attr-defined]

        with ThreadPoolExecutor(max_workers=download_workers) as pool:
            list(pool.map(download, objects))
        count, size = len(objects), sum(o.size for o in objects)
    elif mode == "upload":
        bucket, prefix = parse_s3_uri(dest)
        root = Path(source)
        files = sorted(p for p in root.rglob("*") if p.is_file())

        def upload(path: Path) -> None:
            store.upload_file(path, bucket, prefix + path.relative_to(root).as_posix())

        with ThreadPoolExecutor(max_workers=upload_workers) as pool:
            list(pool.map(upload, files))
        count, size = len(files), sum(p.stat().st_size for p in files)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    finished = time.perf_counter()
    print(
        json.dumps(
            {
                "objects": count,
                "bytes": size,
                "startup_seconds": imported - started,
                "transfer_seconds": finished - imported,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
