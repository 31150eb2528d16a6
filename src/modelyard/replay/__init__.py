"""``modelyard replay``: what the logged traffic would have looked like under another config.

The logged arrivals run through the candidate config's real router (chains, slots, queue
bounds, timeouts, retries, breakers) on an event loop with simulated time, against simulated
providers that answer with the service times and failures the log measured.
"""
