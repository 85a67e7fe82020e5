"""The model kinds the stages know, by the bundle ``kind`` they write.

This module imports the kinds; the kinds never import it (``kinds.base`` is the interface they
share). ``series_lstm`` is the kind's old name (the series family is a convolutional
autoencoder now, with LSTM variants): it is accepted wherever a kind is read (``--kind``,
dataset.json, run.json, bundle manifests) and new files say ``series_ae``.
"""

from __future__ import annotations

from .kinds.base import ModelKind
from .kinds.flow_ae import FlowAeKind, FlowAeV2Kind
from .kinds.graph_tgat import GraphTgatKind
from .kinds.series_ae import SeriesAeKind

BUILTIN: tuple[type[ModelKind], ...] = (FlowAeKind, FlowAeV2Kind, SeriesAeKind, GraphTgatKind)
ALIASES: dict[str, str] = {"series_lstm": "series_ae"}

_KINDS: dict[str, ModelKind] = {k.name: k for k in (cls() for cls in BUILTIN)}


def register(kind: ModelKind) -> ModelKind:
    """Add a kind at run time (tests, plug-ins); its name must be new."""
    if kind.name in _KINDS or kind.name in ALIASES:
        raise ValueError(f"model kind {kind.name!r} registered twice")
    _KINDS[kind.name] = kind
    return kind


def canonical(name: str) -> str:
    return ALIASES.get(name, name)


def get(name: str) -> ModelKind:
    try:
        return _KINDS[canonical(name)]
    except KeyError:
        raise ValueError(f"unknown model kind {name!r}; known: {', '.join(names())}") from None


def for_manifest(manifest: dict) -> ModelKind:
    """The kind that wrote a bundle: its ``kind``, or the kind of that name in the manifest
    that reads its ``features.schema`` (``flow_ae`` bundles of `flow-v2` are ``flow_ae_v2``)."""
    kind = get(manifest["kind"])
    schema = manifest.get("features", {}).get("schema")
    if schema is None or kind.schema == schema:
        return kind
    for k in _KINDS.values():
        if getattr(k, "manifest_kind", k.name) == kind.name and k.schema == schema:
            return k
    return kind


def names(aliases: bool = False) -> list[str]:
    """Kind names; with ``aliases``, the old names accepted on input too."""
    return sorted(_KINDS) + (sorted(ALIASES) if aliases else [])
