"""The host's AWS configuration. Credentials, for `--pass-aws-credentials`: resolved the way boto3
resolves them (environment, profile, SSO, instance role) and handed to the containers as the
standard environment variables, since a container cannot reach the host's credential sources.
The configured region, for the ARN, AWS_REGION and prices."""

from __future__ import annotations

import os
from pathlib import Path

from localproc.errors import CannotRunHere


def host_credentials_environment() -> dict[str, str]:
    import boto3

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise CannotRunHere(
            "--pass-aws-credentials: no AWS credentials are configured on this host "
            "(AWS_PROFILE, AWS_ACCESS_KEY_ID, ~/.aws/credentials, ...)."
        )
    frozen = credentials.get_frozen_credentials()
    environment = {
        "AWS_ACCESS_KEY_ID": frozen.access_key,
        "AWS_SECRET_ACCESS_KEY": frozen.secret_key,
    }
    if frozen.token:
        environment["AWS_SESSION_TOKEN"] = frozen.token
    return environment


def configured_region() -> str | None:
    """The region of the AWS configuration in use (AWS_PROFILE's, or the default profile's, in
    ~/.aws/config), or None; a profile that does not exist is left for S3 to report."""
    if not _config_file().is_file():
        # The only place botocore finds a region besides the environment (which callers read
        # first); a botocore Session costs more than the rest of a trivial run's Python work.
        return os.environ.get("AWS_DEFAULT_REGION") or None
    import botocore.exceptions
    import botocore.session

    try:
        region = botocore.session.Session().get_config_variable("region")
    except botocore.exceptions.BotoCoreError:
        return None
    return str(region) if region else None


def _config_file() -> Path:
    """The shared config file, where botocore looks for it."""
    return Path(os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")).expanduser()
