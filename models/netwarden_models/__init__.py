"""Training, export and bundling of netwarden's anomaly models.

See ../README.md for usage and ../../docs/bundle-format.md for the bundle contract.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
