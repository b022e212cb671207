"""The Redis priority queue with leases and fencing tokens, shared by flasher replicas."""
