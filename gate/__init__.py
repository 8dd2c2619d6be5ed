"""gate: the firmware service of an unattended QR entrance gate."""

__version__ = "0.1.0"
