"""The options of a run, declared once: `run`, `reproduce`, `plan`, `serve` and `gc` offer
(subsets of) them, the CLI makes its typer declarations from these fields, and a detached run's
command line is written from them too (`to_argv`), so the parser and the writer cannot drift.

`RunOptions` is what a person types; `settings()` is the one conversion into the execution's
`RunSettings`. This module imports nothing heavy: the CLI reads it to render `--help`.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localproc.execution.prepare import RunSettings

DEFAULT_STATE_DIR = Path.home() / ".localproc"
# The longest wait between SIGTERM and SIGKILL: an hour is far beyond what a process needs to
# shut down, and a mistyped 1e12 would otherwise keep a stopped job's containers for ever.
MAX_STOP_GRACE_SECONDS = 3600
GB = 2**30
CLUSTERS = (None, "", "swarm")  # "": LOCALPROC_CLUSTER set empty, i.e. no cluster


def _option(default: Any, help: str, *flags: str, envvar: str | None = None) -> Any:  # noqa: A002
    """A field of RunOptions with what the CLI declares for it: its help, its flags (none:
    typer makes them from the field's name) and the environment variable it is read from."""
    return field(default=default, metadata={"help": help, "flags": flags, "envvar": envvar})


@dataclass(frozen=True)
class RunOptions:
    """Every option of a run, in the order the commands list them."""

    s3_root: Path | None = _option(
        None,
        "Serve s3://BUCKET/KEY from DIR/BUCKET/KEY instead of S3 (no AWS account needed).",
        "--s3-root",
        envvar="LOCALPROC_S3_ROOT",
    )
    s3_endpoint_url: str | None = _option(
        None,
        "S3 endpoint to use instead of AWS (also AWS_ENDPOINT_URL_S3).",
        "--s3-endpoint-url",
    )
    region: str | None = _option(
        None,
        "AWS region for the ARN, AWS_REGION and prices (default: the AWS configuration's, "
        "else us-east-1).",
    )
    state_dir: Path = _option(
        DEFAULT_STATE_DIR,
        "Where job records, logs and local outputs are kept.",
        "--state-dir",
        envvar="LOCALPROC_HOME",
    )
    # Not a setting: it renames the request (`prepare_request`), so a detached run's command
    # line never carries it.
    name: str | None = _option(None, "Use this ProcessingJobName instead.")
    keep_staging: bool = _option(
        False, "Keep the downloaded inputs in the job's folder after the run."
    )
    stop_grace: float = _option(
        10.0, "Seconds between SIGTERM and SIGKILL when containers are stopped."
    )
    no_resource_limits: bool = _option(
        False,
        "Do not limit the containers to their instance type's CPUs and memory.",
        "--no-resource-limits",
    )
    no_cache: bool = _option(
        False, "Download every input object, ignoring the input cache.", "--no-cache"
    )
    cache_size_gb: float = _option(
        10.0,
        "Size cap of the input cache in the state dir (least recently used is trimmed).",
        "--cache-size-gb",
        envvar="LOCALPROC_CACHE_GB",
    )
    pass_aws_credentials: bool = _option(
        False,
        "Give the containers this host's AWS credentials (as AWS_ACCESS_KEY_ID etc.).",
        "--pass-aws-credentials",
    )
    cluster: str | None = _option(
        None,
        "'swarm': spread the job's instances over the Docker Swarm whose manager DOCKER_HOST "
        "names.",
        "--cluster",
        envvar="LOCALPROC_CLUSTER",
    )

    def settings(self, claim_token: str | None = None) -> RunSettings:
        """The execution's settings; OptionValueError (naming the option) for a value out of
        range."""
        from localproc.execution.prepare import RunSettings

        check_range(self.stop_grace, "--stop-grace", 0, MAX_STOP_GRACE_SECONDS, "seconds")
        check_range(self.cache_size_gb, "--cache-size-gb", 0, math.inf, "GB")
        if self.cluster not in CLUSTERS:
            raise OptionValueError(
                "--cluster", f"{self.cluster!r} is not a cluster localproc knows: use 'swarm'."
            )
        return RunSettings(
            state_dir=self.state_dir.expanduser(),
            s3_root=self.s3_root,
            s3_endpoint_url=self.s3_endpoint_url,
            region=self.region,
            keep_staging=self.keep_staging,
            stop_grace_seconds=self.stop_grace,
            resource_limits=not self.no_resource_limits,
            use_cache=not self.no_cache,
            cache_cap_bytes=cache_cap_bytes(self.cache_size_gb),
            pass_aws_credentials=self.pass_aws_credentials,
            cluster=self.cluster or None,
            claim_token=claim_token,
        )

    @classmethod
    def from_settings(cls, settings: RunSettings) -> RunOptions:
        """The options that give `settings` back (all but the claim token, which is not an
        option: a detached run is handed it in its environment)."""
        return cls(
            s3_root=settings.s3_root,
            s3_endpoint_url=settings.s3_endpoint_url,
            region=settings.region,
            state_dir=settings.state_dir,
            keep_staging=settings.keep_staging,
            stop_grace=settings.stop_grace_seconds,
            no_resource_limits=not settings.resource_limits,
            no_cache=not settings.use_cache,
            cache_size_gb=settings.cache_cap_bytes / GB,
            pass_aws_credentials=settings.pass_aws_credentials,
            cluster=settings.cluster,
        )

    def to_argv(self) -> list[str]:
        """The command-line options that parse back into these (but `name`): every value is
        written out, so the reader's environment (LOCALPROC_HOME, LOCALPROC_CACHE_GB) cannot
        change it."""
        argv: list[str] = []
        for spec in option_specs():
            value = getattr(self, spec.name)
            if spec.name == "name" or value is None:
                continue
            if spec.annotation is bool:
                if value:
                    argv.append(spec.flag)
            else:
                argv += [spec.flag, str(value)]
        return argv


@dataclass(frozen=True)
class OptionSpec:
    """One field of RunOptions as the CLI declares it."""

    name: str
    annotation: Any
    default: Any
    help: str
    flags: tuple[str, ...]
    envvar: str | None

    @property
    def flag(self) -> str:
        return self.flags[0] if self.flags else "--" + self.name.replace("_", "-")


def option_specs() -> list[OptionSpec]:
    hints = typing.get_type_hints(RunOptions)
    return [
        OptionSpec(
            item.name,
            hints[item.name],
            item.default,
            item.metadata["help"],
            item.metadata["flags"],
            item.metadata["envvar"],
        )
        for item in dataclasses.fields(RunOptions)
    ]


class OptionValueError(ValueError):
    """A value no option accepts; the CLI shows it as a usage error naming the option."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option
        self.message = message


def check_range(value: float, option: str, low: float, high: float, unit: str) -> None:
    """OptionValueError unless low <= value <= high; NaN never is."""
    if not low <= value <= high or not math.isfinite(value):
        wanted = f"between {low:g} and {high:g}" if math.isfinite(high) else f"of {low:g} or more"
        raise OptionValueError(option, f"{value!r} is not a finite number of {unit} {wanted}.")


def cache_cap_bytes(cache_size_gb: float) -> int:
    return int(cache_size_gb * GB)
