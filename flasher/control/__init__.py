"""Server-control actions: power, BMC reset, next boot device."""
