"""Vendor behaviours of the simulated BMCs that differ from the DMTF defaults, one module per vendor."""
