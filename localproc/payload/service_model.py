"""The SageMaker service model shipped in botocore, the source of truth for the payload's shape.

The whole model (about 3,000 shapes, 2 MB of JSON) takes a quarter of a second to load, paid on
every command; localproc needs only the processing-job operations and the shapes they reach. That
part is cut out once and kept in the user's cache folder, keyed by the botocore version and the
model files it would load (so `pip install -U botocore` or a model in ~/.aws/models is picked up
at once). Without a writable cache folder, the part is cut out in memory on each run instead.

botocore is imported inside the functions so importing localproc stays fast; the model is parsed
once per process and then shared.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localproc.usercache import cache_dir, write_atomically

if TYPE_CHECKING:
    from botocore.loaders import Loader
    from botocore.model import ServiceModel, StructureShape

SERVICE_NAME = "sagemaker"
CREATE_OPERATION = "CreateProcessingJob"
DESCRIBE_OPERATION = "DescribeProcessingJob"
PROCESSING_OPERATIONS = (
    CREATE_OPERATION,
    DESCRIBE_OPERATION,
    "ListProcessingJobs",
    "StopProcessingJob",
    "DeleteProcessingJob",
)
# SageMaker Pipelines, as `serve` answers them (serve/pipelines_api.py), and the tag calls the
# SDK's `Pipeline.upsert` makes.
PIPELINE_OPERATIONS = (
    "CreatePipeline",
    "UpdatePipeline",
    "DescribePipeline",
    "DeletePipeline",
    "ListPipelines",
    "ListPipelineVersions",
    "StartPipelineExecution",
    "DescribePipelineExecution",
    "ListPipelineExecutions",
    "ListPipelineExecutionSteps",
    "StopPipelineExecution",
    "RetryPipelineExecution",
    "ListPipelineParametersForExecution",
    "DescribePipelineDefinitionForExecution",
    "AddTags",
    "ListTags",
    "DeleteTags",
)
CACHE_FORMAT = 2  # bump when the cut changes, so older cache files are not read


@functools.cache
def sagemaker_model() -> ServiceModel:
    """The SageMaker ServiceModel (including any override in ~/.aws/models), with the
    processing-job operations and every shape they reach."""
    from botocore.model import ServiceModel

    return ServiceModel(_processing_model_data(), service_name=SERVICE_NAME)


def create_request_shape() -> StructureShape:
    """The input shape of CreateProcessingJob (CreateProcessingJobRequest)."""
    return sagemaker_model().operation_model(CREATE_OPERATION).input_shape


def describe_response_shape() -> StructureShape:
    """The output shape of DescribeProcessingJob (DescribeProcessingJobResponse)."""
    return sagemaker_model().operation_model(DESCRIBE_OPERATION).output_shape


@functools.cache
def describe_only_members() -> frozenset[str]:
    """Members the service computes (ARN, status, timestamps, ...): in Describe, not in Create."""
    create_members = create_request_shape().members
    return frozenset(
        name for name in describe_response_shape().members if name not in create_members
    )


def _processing_model_data() -> dict[str, Any]:
    from botocore.loaders import create_loader

    loader = create_loader()
    cache_file = cache_dir("models") / f"{SERVICE_NAME}-{_source_key(loader)}.json"
    try:
        return json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass  # not cut yet, or unreadable: cut it now
    data = processing_part(loader.load_service_model(SERVICE_NAME, "service-2"))
    write_atomically(cache_file, json.dumps(data, separators=(",", ":")))
    return data


def _source_key(loader: Loader) -> str:
    """Changes whenever the model botocore would load changes: its version, and the name, size
    and modification time of every file of the service in each of the loader's search paths."""
    import botocore

    parts = [str(CACHE_FORMAT), botocore.__version__]
    for search_path in loader.search_paths:
        service_dir = Path(search_path) / SERVICE_NAME
        for path in sorted(service_dir.glob("*/*")):
            try:
                info = path.stat()
            except OSError:
                continue
            parts.append(f"{path}:{info.st_size}:{info.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def processing_part(data: dict[str, Any]) -> dict[str, Any]:
    """The model with only the processing-job and pipeline operations and the shapes they reach
    (inputs, outputs, errors, and everything nested in them); metadata unchanged."""
    served = PROCESSING_OPERATIONS + PIPELINE_OPERATIONS
    operations = {name: data["operations"][name] for name in served}
    shapes: dict[str, Any] = {}
    pending = [
        ref["shape"]
        for operation in operations.values()
        for ref in [operation.get("input"), operation.get("output"), *operation.get("errors", [])]
        if ref
    ]
    while pending:
        name = pending.pop()
        if name in shapes:
            continue
        shape = shapes[name] = data["shapes"][name]
        refs = [*shape.get("members", {}).values()]
        refs += [shape[key] for key in ("member", "key", "value") if key in shape]
        pending.extend(ref["shape"] for ref in refs)
    return {**data, "operations": operations, "shapes": shapes}
