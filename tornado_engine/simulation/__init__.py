"""Simulated DEX venues: pools, pool math, latencies and failures."""
