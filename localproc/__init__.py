"""localproc: run Amazon SageMaker Processing jobs locally in Docker, the way the service runs them."""

__version__ = "0.1.0"
