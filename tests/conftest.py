pytest_plugins = ["s3_endpoint", "docker_engine"]
