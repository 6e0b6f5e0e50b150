"""The long-running service: the daemon (rounds on a schedule, deliveries, reloads, a clean
stop), the status server and what it answers from (snapshot), the Prometheus metrics, and the
health rule shared by /healthz and `nsdi-tracker health`.
"""
