"""A fleet of simulated Redfish BMCs on loopback, with install tasks, power, faults and an audit log."""
