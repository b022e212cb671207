"""Vendor behaviour of the simulated BMCs beyond the flags of :class:`~flasher_sandbox.bmc.shapes.Shape` (where it
differs from the DMTF defaults): one module per vendor (:mod:`.hpe`, :mod:`.lenovo`, :mod:`.openbmc`,
:mod:`.supermicro`), called from the installer and the Redfish handlers where a shape asks."""
