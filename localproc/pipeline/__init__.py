"""SageMaker Pipelines definitions (version 2020-12-01, as the SageMaker Python SDK writes them),
as pure values: the definition parsed and checked (definition.py), its expressions
(expressions.py) and conditions (conditions.py), the step graph (graph.py), the cache key and
retry decisions (policies.py) and the names the service gives (naming.py). No I/O here: the
executor (service/pipeline_executor.py) feeds in step properties and property files."""
