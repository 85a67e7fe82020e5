"""Site models (issue 18, central side): a flow model for one site, trained on the feature rows
its gateway kept (`netwarden samples export`, `GET /samples`, `netwarden samples fetch` over
MQTT), with its threshold picked on held-out rows of that site, bundled, signed and shipped with
`netwarden fleet publish --site`.

    samples.py   reading (and writing) a site's samples: CSV from the gateway, Parquet
    train.py     the ``site-train`` command: samples -> dataset -> run -> ONNX -> bundle
    loop.py      the ``site-loop`` command: for every site of a sites.toml, fetch, train, publish
"""
