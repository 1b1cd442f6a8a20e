"""The container engine: the only place that talks to Docker (through the docker SDK)."""

JOB_LABEL = "localproc.job"
