"""User errors become exit codes and messages in one place each: the CLI's `user_errors` and the
HTTP front door's `api_error`."""

from __future__ import annotations

import pytest
import typer

from localproc.cli.errors import user_errors
from localproc.errors import (
    CannotRunHere,
    DamagedRecord,
    LocalprocError,
    ParameterValidationError,
    PayloadError,
    ResourceInUse,
    ResourceLimitExceeded,
    ResourceNotFound,
    ValidationException,
)
from localproc.serve.errors import api_error
from localproc.service.detach import DetachedRunRejected

ERRORS = [
    (ValidationException(["a", "b"]), 2, "ValidationException"),
    (ParameterValidationError(["Unknown parameter"]), 2, "ParamValidationError"),
    (PayloadError("not JSON"), 2, "InvalidPayload"),
    (ResourceInUse("taken"), 2, "ResourceInUse"),
    (ResourceNotFound("no such job"), 2, "ResourceNotFound"),
    (ResourceLimitExceeded("too many"), 2, "ResourceLimitExceeded"),
    (DamagedRecord("job", "/s/record.json", "not JSON"), 2, "DamagedRecord"),
    (CannotRunHere("no engine"), 4, "CannotRunHere"),
]


@pytest.mark.parametrize(("error", "exit_code", "code"), ERRORS)
def test_the_cli_prints_code_and_message_and_exits_with_the_errors_status(
    error: LocalprocError, exit_code: int, code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as ended, user_errors():
        raise error
    assert ended.value.exit_code == exit_code
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"localproc: {code}: {error}\n")


def test_the_cli_shows_control_characters_of_a_message_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(typer.Exit), user_errors():
        raise ResourceNotFound("job \x1b[31mred")
    assert "\x1b" not in capsys.readouterr().err


def test_other_errors_pass_the_cli_boundary() -> None:
    with pytest.raises(KeyError), user_errors():
        raise KeyError("a bug")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ValidationException(["a"]), "ValidationException"),
        (ParameterValidationError(["Unknown parameter"]), "ValidationException"),
        (ResourceNotFound("gone"), "ResourceNotFound"),
        (CannotRunHere("no engine"), "CannotRunHere"),
        # A background run's own codes: the service's are kept, anything else is CannotRunHere.
        (DetachedRunRejected("taken", 2, "ResourceInUse"), "ResourceInUse"),
        (DetachedRunRejected("bad", 2, "ParamValidationError"), "ValidationException"),
        (DetachedRunRejected("no image", 4, "CannotRunHere"), "CannotRunHere"),
        (DetachedRunRejected("crashed", 1), "CannotRunHere"),
    ],
)
def test_the_api_answers_with_the_services_codes(error: LocalprocError, code: str) -> None:
    answer = api_error(error)
    assert (answer.status, answer.body()) == (400, {"__type": code, "message": error.message})


def test_the_api_words_a_damaged_record_for_api_clients() -> None:
    message = api_error(DamagedRecord("job", "/s/record.json", "not JSON")).message
    assert "DeleteProcessingJob" in message and "localproc" not in message
