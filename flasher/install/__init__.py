"""Out-of-band firmware install: plans (install modes), the firmware store, and the install steps."""
