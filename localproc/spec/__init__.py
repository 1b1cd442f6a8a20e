"""The payload layer: loading a CreateProcessingJob request (or a DescribeProcessingJob response),
validating it against the SageMaker service model in botocore plus the documented service rules,
and echoing it the way the service does. Pure Python: no Docker, no network.
"""
