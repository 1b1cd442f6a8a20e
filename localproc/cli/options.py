"""The typer declarations of the run options, made from `service.options.RunOptions` (their one
declaration), and the decorator that gives a command the ones it offers."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from localproc.service.options import OptionSpec, OptionValueError, RunOptions, option_specs

_SPECS = {spec.name: spec for spec in option_specs()}

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
PayloadArg = Annotated[
    str,
    typer.Argument(
        help="CreateProcessingJob request (or DescribeProcessingJob response): a JSON file, or -."
    ),
]
DetachOption = Annotated[
    bool,
    typer.Option(
        "--detach",
        help="Print the job's ARN and return at once; the job runs on in the background.",
    ),
]


def declared(name: str) -> Any:
    """The Annotated type typer reads for the run option `name`."""
    spec = _SPECS[name]
    return Annotated[spec.annotation, typer.Option(*spec.flags, help=spec.help, envvar=spec.envvar)]


StateDirOption = declared("state_dir")
DEFAULT_STATE_DIR = _SPECS["state_dir"].default


def with_run_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Replace the command's `options: RunOptions` parameter by the options `names` (in that
    order, with their declarations and defaults); the command is called with
    `options=RunOptions(...)` made of them (the others keep their defaults)."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = inspect.signature(command, eval_str=True).parameters
        parameters: list[inspect.Parameter] = []
        for parameter in own.values():
            if parameter.name == "options":
                parameters += [_parameter(_SPECS[name]) for name in names]
            else:
                parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))

        @functools.wraps(command)
        def wrapper(**given: Any) -> Any:
            chosen = {name: given.pop(name) for name in names}
            return command(**given, options=RunOptions(**chosen))

        wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        del wrapper.__wrapped__  # typer must read the signature above, not the command's
        return wrapper

    return decorate


def _parameter(spec: OptionSpec) -> inspect.Parameter:
    return inspect.Parameter(
        spec.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=spec.default,
        annotation=declared(spec.name),
    )


def settings_for(options: RunOptions, claim_token: str | None = None) -> Any:
    """The run's settings; a value out of range is a usage error naming its option (exit 2)."""
    try:
        return options.settings(claim_token)
    except OptionValueError as err:
        raise typer.BadParameter(err.message, param_hint=f"'{err.option}'") from None
