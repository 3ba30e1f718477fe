"""Helpers shared by the tests: market factories, tiny configs, servers, polling, the reference
environment."""
