"""Model kinds: the interface every model family implements (``base.ModelKind``) and the two
families that ship (``flow_ae``, ``series_ae``). The stages look kinds up in
``netwarden_models.registry``; nothing in this package imports the registry back."""
