"""Stage 1, data: dataset directories (``dataset``), feature scaling, synthetic series rates.
The features themselves are only ever the gateway's (``features.py``, ``series_data.py``
read its `netwarden features` CSVs)."""
