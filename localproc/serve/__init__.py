"""The HTTP front door: `localproc serve`, the SageMaker and CloudWatch Logs APIs over AWS JSON
1.1 on a bounded HTTP server."""
