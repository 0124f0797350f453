"""`python -m hazelog_tools.bench`: throughput and latency of every hop of hazelog, side by side
with the baselines that bound them (bare Sanic, one logging instance, the Hazelcast client)."""
