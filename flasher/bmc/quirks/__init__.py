"""Vendor quirks of the BMC driver, one module per vendor; each recognises its vendor from what the BMC answers
(ServiceRoot ``Vendor``, ``Oem`` keys, the Manager's model), never from an address or a name."""
