"""Training, export and bundling of netwarden's anomaly models.

One route by stage, each a subpackage and a command, for every model kind: ``data``
(dataset) -> ``train`` -> ``evaluate`` -> ``export`` (export, quantize) -> ``select`` (bench,
select) -> ``bundle`` (bundle, sign, check). The kinds (``kinds/``) plug in through
``kinds.base.ModelKind`` and are looked up in ``registry``. See ../README.md for usage and
../../docs/bundle-format.md for the bundle contract.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
