"""Helpers shared by the test suites (fake servers and the like). Nothing here reaches the network."""
