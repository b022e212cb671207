"""Vendor behaviour of the simulated BMCs beyond the flags of :class:`~flasher_sandbox.bmc.shapes.Shape`: one module
per vendor (:mod:`.hpe`, :mod:`.openbmc`), called from the installer and the Redfish handlers where a shape asks."""
