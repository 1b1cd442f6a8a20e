"""The region of the host's AWS configuration, as botocore would find it, without paying for a
botocore Session when there is no config file to read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from localproc.storage.credentials import configured_region


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    return config


def test_no_config_file_means_no_region(aws_env: Path) -> None:
    assert configured_region() is None


def test_no_config_file_still_honours_the_environment(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    assert configured_region() == "eu-north-1"


def test_the_default_profiles_region(aws_env: Path) -> None:
    aws_env.write_text("[default]\nregion = eu-west-3\n")
    assert configured_region() == "eu-west-3"


def test_the_chosen_profiles_region(aws_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env.write_text("[default]\nregion = eu-west-3\n[profile dev]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_PROFILE", "dev")
    assert configured_region() == "ap-south-1"


def test_a_profile_that_does_not_exist_gives_no_region(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws_env.write_text("[default]\nregion = eu-west-3\n")
    monkeypatch.setenv("AWS_PROFILE", "missing")
    assert configured_region() is None


def test_without_a_config_file_botocore_is_not_loaded(aws_env: Path) -> None:
    """A botocore Session costs tens of milliseconds: more than a trivial run's own work."""
    probe = (
        "import sys\n"
        "from localproc.storage.credentials import configured_region\n"
        "assert configured_region() is None\n"
        "print('botocore.session' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
