"""The sandbox: a Serverservice-compatible inventory and a fleet of simulated Redfish BMCs.

For demos, tests and benchmarks. It imports nothing of ``flasher`` beyond :mod:`flasher.constants`.
"""
