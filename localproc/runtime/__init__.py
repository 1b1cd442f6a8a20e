"""The container engine: the only place that talks to Docker (through the docker SDK)."""

from localproc.plan.naming import JOB_LABEL, RUN_LABEL, RUNNER_LABEL

__all__ = ["JOB_LABEL", "RUNNER_LABEL", "RUN_LABEL"]
