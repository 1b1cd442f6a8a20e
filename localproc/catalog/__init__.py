"""The instance catalog: instance types with their vCPUs, memory and GPUs, their on-demand
prices, and what a job costs on SageMaker. Pure data and arithmetic."""
