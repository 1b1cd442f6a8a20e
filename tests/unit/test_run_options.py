"""The run options, declared once (service.options.RunOptions): what the CLI parses, what a
detached run's command line says, and the RunSettings the execution gets, all agree."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from localproc.cli import run_commands
from localproc.cli.app import app
from localproc.execution.prepare import RunSettings
from localproc.service import runs
from localproc.service.options import MAX_STOP_GRACE_SECONDS, OptionValueError, RunOptions

SETTINGS = [
    RunSettings(state_dir=Path("/var/lp")),
    RunSettings(
        state_dir=Path("/srv/state dir"),
        s3_root=Path("/data/s3"),
        s3_endpoint_url="http://127.0.0.1:9000",
        region="eu-west-3",
        keep_staging=True,
        stop_grace_seconds=2.5,
        resource_limits=False,
        use_cache=False,
        cache_cap_bytes=int(0.1 * 2**30),
        pass_aws_credentials=True,
        claim_token="token-1",
    ),
]


def _parsed_by_run(argv: list[str], monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    """The settings `localproc run - ARGV` would run with (nothing is run)."""
    seen: list[Any] = []

    def capture(request: dict[str, Any], settings: Any, detach: bool, as_json: bool) -> None:
        seen.append(settings)
        raise typer.Exit(0)

    monkeypatch.setattr(runs, "load_request", lambda *args, **kwargs: {})
    monkeypatch.setattr(run_commands, "_run_request", capture)
    result = CliRunner().invoke(app, ["run", "-", *argv], env=env)
    assert result.exit_code == 0, result.output
    [settings] = seen
    return settings


@pytest.mark.parametrize("settings", SETTINGS)
def test_settings_survive_the_detached_runs_command_line(
    settings: RunSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = RunOptions.from_settings(settings).to_argv()
    # The reader's environment cannot change what the command line says.
    env = {"LOCALPROC_HOME": "/elsewhere", "LOCALPROC_CACHE_GB": "99", "LOCALPROC_S3_ROOT": ""}
    if settings.claim_token:
        env["LOCALPROC_CLAIM_TOKEN"] = settings.claim_token
    assert _parsed_by_run(argv, monkeypatch, **env) == settings


def test_defaults_are_the_execution_defaults() -> None:
    assert RunOptions(state_dir=Path("/x")).settings() == RunSettings(state_dir=Path("/x"))


def test_settings_from_options_and_back() -> None:
    options = RunOptions(
        s3_root=Path("/r"), region="us-west-2", state_dir=Path("/s"), keep_staging=True,
        stop_grace=0.0, no_resource_limits=True, no_cache=True, cache_size_gb=0.5,
        pass_aws_credentials=True,
    )  # fmt: skip
    assert RunOptions.from_settings(options.settings()) == options


def test_state_dir_is_expanded() -> None:
    assert RunOptions(state_dir=Path("~/lp")).settings().state_dir == Path.home() / "lp"


@pytest.mark.parametrize(
    ("field", "value", "option"),
    [
        ("stop_grace", -1.0, "--stop-grace"),
        ("stop_grace", MAX_STOP_GRACE_SECONDS + 1.0, "--stop-grace"),
        ("stop_grace", math.nan, "--stop-grace"),
        ("cache_size_gb", -0.5, "--cache-size-gb"),
        ("cache_size_gb", math.inf, "--cache-size-gb"),
    ],
)
def test_values_out_of_range_name_their_option(field: str, value: float, option: str) -> None:
    with pytest.raises(OptionValueError) as refused:
        RunOptions(**{field: value}).settings()
    assert refused.value.option == option
    assert "is not a finite number of" in refused.value.message


def test_an_option_out_of_range_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["run", "-", "--stop-grace", "1e12"])
    assert result.exit_code == 2
    assert (
        "Invalid value for '--stop-grace': 1000000000000.0 is not a finite number of seconds "
        "between 0 and 3600." in result.output
    )
