"""Stage 7, bundle and sign: the bundle format (``format``), writing one from a run
(``write``), verifying it in Python and with the gateway (``verify``), ed25519 keys and
signatures (``signing``)."""
