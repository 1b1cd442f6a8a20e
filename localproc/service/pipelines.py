"""SageMaker Pipelines' pipeline operations over the state dir, as both front doors use them:
create, update (a new version), describe, delete, list, list versions, and tags. Results are in
the API's shapes with timestamps as ISO 8601 strings (serve puts them on the wire). Executions
are pipeline_executions.py's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from localproc.errors import ResourceNotFound, ValidationException
from localproc.pipeline.definition import Definition, parse_definition
from localproc.pipeline.graph import graph
from localproc.pipeline.naming import pipeline_arn, pipeline_name_of
from localproc.records.pipelines import PipelineStore
from localproc.records.times import now, parse_timestamp, timestamp

DEFAULT_PAGE = 50
MAX_DEFINITION_BYTES = 1024 * 1024  # PipelineDefinition's own limit in the service model

ReadObject = Callable[[str, int], bytes]


def checked_definition(text: str) -> Definition:
    """The definition parsed, its graph checked (no cycle, no unknown step)."""
    definition = parse_definition(text)
    graph(definition)
    return definition


def page(items: list[Any], body: dict[str, Any], key: str) -> dict[str, Any]:
    """One page of `items` under `key`, with NextToken (an offset) when more remain."""
    token = str(body.get("NextToken") or "0")
    # An offset this server wrote: ASCII digits only, and short (int() refuses 4,300 digits).
    if not (token.isascii() and token.isdigit() and len(token) <= 18):
        raise ValidationException.single("NextToken is not a token this server gave")
    start = int(token)
    size = int(body.get("MaxResults") or DEFAULT_PAGE)
    result: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        result["NextToken"] = str(start + size)
    return result


def in_time_range(moment: str, body: dict[str, Any]) -> bool:
    when = parse_timestamp(moment)
    after, before = body.get("CreatedAfter"), body.get("CreatedBefore")
    return (after is None or when > after) and (before is None or when < before)


class PipelineCatalog:
    def __init__(self, state_dir: Path, region: str, read_object: ReadObject) -> None:
        self.store = PipelineStore(state_dir)
        self.region = region
        self.read_object = read_object

    def load(self, name_or_arn: str) -> dict[str, Any]:
        name = self.stored_name(pipeline_name_of(name_or_arn))
        pipeline = self.store.load_pipeline(name) if PipelineStore.name_ok(name) else None
        if pipeline is None:
            raise ResourceNotFound(f"Pipeline '{pipeline_arn(name, self.region)}' does not exist.")
        return pipeline

    def stored_name(self, name: str) -> str:
        """The recorded pipeline `name` means. Names differ in more than case, as the ARNs the
        service gives (which lowercase them) require; so does a case-insensitive filesystem."""
        names = self.store.pipeline_names()
        if name in names:
            return name
        return next((n for n in names if n.lower() == name.lower()), name)

    def definition_text(self, body: dict[str, Any]) -> str:
        text = body.get("PipelineDefinition")
        location = body.get("PipelineDefinitionS3Location")
        if (text is None) == (location is None):
            raise ValidationException.single(
                "Exactly one of PipelineDefinition and PipelineDefinitionS3Location is required."
            )
        if location is not None:
            uri = f"s3://{location['Bucket']}/{location['ObjectKey']}"
            data = self.read_object(uri, MAX_DEFINITION_BYTES)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationException.single(f"The definition at {uri} is not UTF-8") from None
        checked_definition(text)
        return str(text)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        text = self.definition_text(body)
        name = body["PipelineName"]
        arn = pipeline_arn(name, self.region)
        with self.store.locked():
            existing = self.store.load_pipeline(self.stored_name(name))
            if existing is not None:
                if existing.get("ClientRequestToken") == body.get("ClientRequestToken"):
                    return {"PipelineArn": arn}  # the same request again: idempotent
                # The SDK's `upsert` recognises these words and updates instead.
                raise ValidationException.single(
                    "Pipeline names must be unique within an AWS account and region. Pipeline "
                    f"with name ({name}) already exists."
                )
            created = timestamp(now())
            pipeline = {
                "PipelineName": name,
                "PipelineArn": arn,
                "PipelineDisplayName": body.get("PipelineDisplayName") or name,
                "PipelineDescription": body.get("PipelineDescription"),
                "RoleArn": body["RoleArn"],
                "PipelineStatus": "Active",
                "CreationTime": created,
                "LastModifiedTime": created,
                "ParallelismConfiguration": body.get("ParallelismConfiguration"),
                "ClientRequestToken": body.get("ClientRequestToken"),
                "Tags": list(body.get("Tags") or []),
                "Versions": [_version(1, text, created)],
            }
            self.store.save_pipeline(pipeline)
        return {"PipelineArn": arn}

    def update(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.store.locked():
            pipeline = self.load(body["PipelineName"])
            changed = timestamp(now())
            has_definition = "PipelineDefinition" in body or "PipelineDefinitionS3Location" in body
            text = self.definition_text(body) if has_definition else None
            for member in ("PipelineDisplayName", "PipelineDescription", "RoleArn"):
                if body.get(member) is not None:
                    pipeline[member] = body[member]
            if body.get("ParallelismConfiguration") is not None:
                pipeline["ParallelismConfiguration"] = body["ParallelismConfiguration"]
            versions = pipeline["Versions"]
            latest = versions[-1]
            definition = text if text is not None else latest["PipelineDefinition"]
            versions.append(_version(latest["PipelineVersionId"] + 1, definition, changed))
            pipeline["LastModifiedTime"] = changed
            self.store.save_pipeline(pipeline)
        return {
            "PipelineArn": pipeline["PipelineArn"],
            "PipelineVersionId": versions[-1]["PipelineVersionId"],
        }

    def describe(self, body: dict[str, Any]) -> dict[str, Any]:
        pipeline = self.load(body["PipelineName"])
        version = self.version(pipeline, body.get("PipelineVersionId"))
        members = ("PipelineArn", "PipelineName", "PipelineDisplayName", "PipelineDescription",
                   "RoleArn", "PipelineStatus", "CreationTime", "LastModifiedTime", "LastRunTime",
                   "ParallelismConfiguration")  # fmt: skip
        described = {m: pipeline[m] for m in members if pipeline.get(m) is not None}
        described["PipelineDefinition"] = version["PipelineDefinition"]
        return described

    def version(self, pipeline: dict[str, Any], version_id: int | None) -> dict[str, Any]:
        if version_id is None:
            return dict(pipeline["Versions"][-1])
        for version in pipeline["Versions"]:
            if version["PipelineVersionId"] == version_id:
                return dict(version)
        raise ResourceNotFound(
            f"Pipeline version {version_id} of '{pipeline['PipelineArn']}' does not exist."
        )

    def delete(
        self,
        body: dict[str, Any],
        running: Callable[[str], list[str]],
        forget_executions: Callable[[str], None],
    ) -> dict[str, Any]:
        """The pipeline and (through `forget_executions`, under the same lock, so that no
        pipeline of the same name created meanwhile loses its own) its executions."""
        with self.store.locked():
            pipeline = self.load(body["PipelineName"])
            name = pipeline["PipelineName"]
            busy = running(name)
            if busy:
                raise ValidationException.single(
                    f"Pipeline {name} has executions that are still running "
                    f"({', '.join(busy)}); stop them with StopPipelineExecution first."
                )
            self.store.delete_pipeline(name)
            forget_executions(name)
        return {"PipelineArn": pipeline["PipelineArn"]}

    def list(self, body: dict[str, Any]) -> dict[str, Any]:
        prefix = body.get("PipelineNamePrefix") or ""
        summaries = []
        for name in self.store.pipeline_names():
            pipeline = self.store.load_pipeline(name)
            if pipeline is None or not name.startswith(prefix):
                continue
            if not in_time_range(pipeline["CreationTime"], body):
                continue
            members = ("PipelineArn", "PipelineName", "PipelineDisplayName", "PipelineDescription",
                       "RoleArn", "CreationTime", "LastModifiedTime")  # fmt: skip
            summary = {m: pipeline[m] for m in members if pipeline.get(m) is not None}
            if pipeline.get("LastRunTime"):
                summary["LastExecutionTime"] = pipeline["LastRunTime"]
            summaries.append(summary)
        by = "PipelineName" if body.get("SortBy") == "Name" else "CreationTime"
        summaries.sort(
            key=lambda s: s[by], reverse=body.get("SortOrder", "Descending") == "Descending"
        )
        return page(summaries, body, "PipelineSummaries")

    def versions(self, body: dict[str, Any]) -> dict[str, Any]:
        pipeline = self.load(body["PipelineName"])
        summaries = [
            {
                "PipelineArn": pipeline["PipelineArn"],
                **{k: v for k, v in version.items() if k != "PipelineDefinition"},
            }
            for version in pipeline["Versions"]
            if in_time_range(version["CreationTime"], body)
        ]
        summaries.sort(
            key=lambda s: s["CreationTime"],
            reverse=body.get("SortOrder", "Descending") == "Descending",
        )
        return page(summaries, body, "PipelineVersionSummaries")

    def mark_run(self, name: str, version_id: int, execution_arn: str) -> None:
        with self.store.locked():
            pipeline = self.store.load_pipeline(name)
            if pipeline is None:
                return
            pipeline["LastRunTime"] = timestamp(now())
            for version in pipeline["Versions"]:
                if version["PipelineVersionId"] == version_id:
                    version["LastExecutionPipelineExecutionArn"] = execution_arn
            self.store.save_pipeline(pipeline)

    # -- tags (pipelines only) --------------------------------------------------------------
    def _tagged(self, arn: str) -> dict[str, Any]:
        prefix = pipeline_arn("", self.region)
        if not arn.startswith(prefix) or "/" in arn[len(prefix) :]:
            raise ValidationException.single(
                f"localproc serve keeps tags of pipelines only; '{arn}' is not a pipeline ARN of "
                f"region {self.region}."
            )
        lowered = arn[len(prefix) :]
        for name in self.store.pipeline_names():
            if name.lower() == lowered:
                pipeline = self.store.load_pipeline(name)
                if pipeline is not None:
                    return pipeline
        raise ResourceNotFound(f"Pipeline '{arn}' does not exist.")

    def add_tags(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.store.locked():
            pipeline = self._tagged(body["ResourceArn"])
            tags = {t["Key"]: t for t in pipeline.get("Tags", [])}
            tags.update({t["Key"]: t for t in body["Tags"]})
            pipeline["Tags"] = list(tags.values())
            self.store.save_pipeline(pipeline)
        return {"Tags": body["Tags"]}

    def list_tags(self, body: dict[str, Any]) -> dict[str, Any]:
        return page(list(self._tagged(body["ResourceArn"]).get("Tags", [])), body, "Tags")

    def delete_tags(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.store.locked():
            pipeline = self._tagged(body["ResourceArn"])
            keys = set(body["TagKeys"])
            pipeline["Tags"] = [t for t in pipeline.get("Tags", []) if t["Key"] not in keys]
            self.store.save_pipeline(pipeline)
        return {}


def _version(version_id: int, definition: str, created: str) -> dict[str, Any]:
    return {
        "PipelineVersionId": version_id,
        "PipelineDefinition": definition,
        "CreationTime": created,
    }
