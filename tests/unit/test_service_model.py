"""The processing-job part of botocore's SageMaker model, cut once and kept in the cache folder:
it must describe every shape exactly as the whole model does, and follow botocore's files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.loaders import Loader, create_loader
from botocore.model import ServiceModel, Shape

from localproc.payload import service_model
from localproc.payload.service_model import (
    PIPELINE_OPERATIONS,
    PROCESSING_OPERATIONS,
    SERVICE_NAME,
    processing_part,
)


@pytest.fixture(scope="module")
def whole_model_data() -> dict[str, Any]:
    return create_loader().load_service_model(SERVICE_NAME, "service-2")


@pytest.fixture()
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "localproc" / "models"


def _describe(shape: Shape, seen: set[str]) -> Any:
    """Everything validation and rendering read of a shape, nested shapes included."""
    if shape.name in seen:
        return shape.name
    seen = seen | {shape.name}
    described: dict[str, Any] = {
        "name": shape.name,
        "type": shape.type_name,
        "metadata": shape.metadata,
        "required": getattr(shape, "required_members", None),
        "enum": getattr(shape, "enum", None),
    }
    if shape.type_name == "structure":
        described["members"] = {k: _describe(v, seen) for k, v in shape.members.items()}
    elif shape.type_name == "list":
        described["member"] = _describe(shape.member, seen)
    elif shape.type_name == "map":
        described["key"] = _describe(shape.key, seen)
        described["value"] = _describe(shape.value, seen)
    return described


def test_the_cut_describes_every_processing_operation_as_the_whole_model_does(
    whole_model_data: dict[str, Any],
) -> None:
    whole = ServiceModel(whole_model_data, service_name=SERVICE_NAME)
    cut = ServiceModel(processing_part(whole_model_data), service_name=SERVICE_NAME)
    assert len(cut.shape_names) < len(whole.shape_names) / 10
    assert cut.metadata == whole.metadata
    for operation in PROCESSING_OPERATIONS:
        mine, theirs = cut.operation_model(operation), whole.operation_model(operation)
        for part in ("input_shape", "output_shape"):
            mine_shape, their_shape = getattr(mine, part), getattr(theirs, part)
            if their_shape is None:
                assert mine_shape is None
            else:
                assert _describe(mine_shape, set()) == _describe(their_shape, set())
        assert [e.name for e in mine.error_shapes] == [e.name for e in theirs.error_shapes]


def test_the_cut_is_made_once_and_then_read_from_the_cache(cache_home: Path) -> None:
    first = service_model._processing_model_data()
    [cached] = cache_home.glob("sagemaker-*.json")
    assert json.loads(cached.read_text()) == first

    # Mark the cached copy: the next load returns the mark, so it read the file.
    marked = {**first, "metadata": {**first["metadata"], "serviceFullName": "from the cache"}}
    cached.write_text(json.dumps(marked))
    assert service_model._processing_model_data()["metadata"]["serviceFullName"] == (
        "from the cache"
    )


def test_a_damaged_cache_file_is_cut_again(cache_home: Path) -> None:
    service_model._processing_model_data()
    [cached] = cache_home.glob("sagemaker-*.json")
    cached.write_text('{"operations": ')
    data = service_model._processing_model_data()
    assert set(data["operations"]) == set(PROCESSING_OPERATIONS + PIPELINE_OPERATIONS)
    assert json.loads(cached.read_text()) == data


def test_a_model_in_the_users_aws_models_folder_is_picked_up(
    cache_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    whole_model_data: dict[str, Any],
) -> None:  # fmt: skip
    service_model._processing_model_data()
    # botocore reads ~/.aws/models before its own data: a newer model there must win at once.
    models = tmp_path / "home" / ".aws" / "models"
    override = models / SERVICE_NAME / "2017-07-24" / "service-2.json"
    override.parent.mkdir(parents=True)
    patched = json.loads(json.dumps(whole_model_data))
    patched["metadata"]["serviceFullName"] = "Overridden SageMaker"
    override.write_text(json.dumps(patched))
    # (botocore reads HOME once, when it is imported: point its loader there instead.)
    monkeypatch.setattr(Loader, "CUSTOMER_DATA_PATH", str(models))

    assert service_model._processing_model_data()["metadata"]["serviceFullName"] == (
        "Overridden SageMaker"
    )
    assert len(list(cache_home.glob("sagemaker-*.json"))) == 2


def test_an_unwritable_cache_folder_only_costs_the_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    data = service_model._processing_model_data()
    assert set(data["operations"]) == set(PROCESSING_OPERATIONS + PIPELINE_OPERATIONS)
