"""hazelog's controller tools: the local runner, the benchmark and the Hazelcast member
configuration they render. Never installed on the hosts."""
