"""The BMC driver over sushy (Redfish): versions, install, task polling, power, boot, BMC reset."""
