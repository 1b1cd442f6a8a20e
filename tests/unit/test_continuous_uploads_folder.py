"""Continuous outputs into the folder store (no S3 endpoint): files land below the store's root
while the job runs."""

from __future__ import annotations

from pathlib import Path

from helpers.continuous import eventually, target, uploading

from localproc.storage import open_store


def test_the_folder_store_receives_outputs_the_same_way(tmp_path: Path) -> None:
    root = tmp_path / "s3-root"
    (root / "local-bucket").mkdir(parents=True)
    store = open_store(root, None, None)
    out = target(tmp_path, "local-bucket", "out")
    with uploading([out], store) as (_, reports):
        (out.folder / "sub").mkdir()
        (out.folder / "sub" / "a.txt").write_text("to a folder")
        assert eventually(lambda: (root / "local-bucket/out/sub/a.txt").is_file())
    assert (root / "local-bucket/out/sub/a.txt").read_text() == "to a folder"
    assert reports[0].failures == []
