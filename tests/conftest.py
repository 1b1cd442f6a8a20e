# The fixtures every test may ask for: S3 (a moto server), the Docker engine and the CLI as users
# run it, a second Docker engine reached over TCP only (engine_nodes), and the fuzzed payload
# corpus. tests/unit/conftest.py refuses the ones that need an engine or the network;
# tests/integration/conftest.py checks that nothing is left behind.
pytest_plugins = ["s3_endpoint", "docker_engine", "engine_nodes", "helpers.fuzz_payloads"]
