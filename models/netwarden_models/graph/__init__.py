"""The temporal graph family (kind ``graph_tgat``): the gateway's ``graph-v1`` edge rows
(`netwarden features --set graph-v1`), lab-run labels, the TGAT edge classifier and the
static-snapshot GCN baseline, and the Table-1 report (docs/graph-model.md)."""
