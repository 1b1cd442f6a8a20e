"""The payload: loading a CreateProcessingJob request (or a DescribeProcessingJob response),
validating it against the SageMaker service model in botocore plus the documented service rules,
the typed job, and echoing it the way the service does. Pure Python: no Docker, no network."""
