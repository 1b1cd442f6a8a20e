"""localproc: run Amazon SageMaker Processing jobs locally in Docker, as the service runs them."""

__version__ = "0.1.0"
