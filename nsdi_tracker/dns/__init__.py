"""Asking resolvers: the wire codecs (fastwire on the hot path, dnspython for the rest), the
transports (UDP, a UDP socket pool, TCP, DoT, DoH), the per-resolver client with its rate
limit, lanes and retries, and the latency histogram.
"""
