"""Credentials for pulling from Amazon ECR: the token comes from boto3's ECR client, as
`aws ecr get-login-password` would give it. Other registries use Docker's own configuration."""

from __future__ import annotations

import base64
import re

ECR_REGISTRY = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
)


def auth_config_for(image_uri: str) -> dict[str, str] | None:
    match = ECR_REGISTRY.match(image_uri)
    if match is None:
        return None
    import boto3
    import botocore.exceptions

    try:
        ecr = boto3.client("ecr", region_name=match["region"])
        token = ecr.get_authorization_token(registryIds=[match["account"]])
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return None  # the pull then fails with the registry's own message, which says more
    data = token["authorizationData"][0]
    username, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    return {"username": username, "password": password}
