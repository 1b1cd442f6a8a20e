"""The two transfer data sets: many small objects and one big object, made once per benchmark run
as local files and put into moto's S3 when a benchmark needs them (and taken out again after, since
moto keeps objects in memory)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import BUCKET, KB, MiB, Settings, log, make_big_file, make_small_files


@dataclass(frozen=True)
class Dataset:
    key: str  # "many" or "big"
    label: str  # for the report: "1,000 × 100 KB"
    folder: Path  # local copy (the upload source)
    prefix: str  # where it lives in S3 while seeded, ending in "/"
    objects: int
    bytes: int

    @property
    def uri(self) -> str:
        return f"s3://{BUCKET}/{self.prefix}"


def dataset(settings: Settings, key: str) -> Dataset:
    """The data set, made locally on first use and present in S3 when this returns."""
    assert settings.moto is not None
    cache_key = f"dataset-{key}"
    if cache_key not in settings.keep:
        folder = settings.workdir / "data" / key
        if key == "many":
            count = settings.scaled(1000, 100)
            make_small_files(folder, count, 100 * KB)
            made = Dataset(key, f"{count:,} × 100 KB", folder, f"data/{key}/", count,
                           count * 100 * KB)  # fmt: skip
        elif key == "big":
            size = settings.scaled(512, 64) * MiB
            make_big_file(folder / "big.bin", size)
            made = Dataset(key, f"1 × {size // MiB} MiB", folder, f"data/{key}/", 1, size)
        else:
            raise ValueError(key)
        settings.keep[cache_key] = made
        settings.keep[cache_key + "-seeded"] = False
    made = settings.keep[cache_key]
    if not settings.keep[cache_key + "-seeded"]:
        log(f"putting {made.label} into moto")
        settings.moto.upload_dir(made.folder, made.prefix)
        settings.keep[cache_key + "-seeded"] = True
    return made


def drop(settings: Settings, key: str) -> None:
    """Take the data set out of S3 (it is put back on the next `dataset()`)."""
    cache_key = f"dataset-{key}"
    if settings.keep.get(cache_key + "-seeded") and settings.moto is not None:
        made = settings.keep[cache_key]
        settings.moto.delete_prefix(made.prefix)
        settings.keep[cache_key + "-seeded"] = False
