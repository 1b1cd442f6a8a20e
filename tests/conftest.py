"""The test tree (run everything with `python3 -m pytest`):

- tests/unit: no Docker engine, no network (tests/unit/conftest.py makes sure of both);
  `python3 -m pytest tests/unit` runs in well under a minute.
- tests/integration: the real Docker engine, a real S3 endpoint (moto's server), the CLI and
  `serve` as users run them; every test there is checked for containers and networks left
  behind (tests/integration/conftest.py).
- Helpers, importable from both (this folder is on sys.path): `payloads` (job payloads and
  names, pure), `docker_engine` (the engine and CLI fixtures, for tests/integration),
  `s3_endpoint` (the S3 server fixtures), `serve_clients`, `freezable_proxy`.
"""
