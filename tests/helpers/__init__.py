"""Helpers the unit and integration tests share: nothing here needs a Docker engine or the
network to be imported."""
