"""The container engine: the only place that talks to Docker (through the docker SDK)."""

JOB_LABEL = "localproc.job"
RUNNER_LABEL = "localproc.execution.runner"  # pid/start-time/host of the process that runs the job
RUN_LABEL = "localproc.run"  # one run's id: its objects are removed by this label only
