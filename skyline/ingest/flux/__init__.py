"""flux: HTTP ingest (Skyline flux API, Prometheus remote_write, telegraf/Influx) and StatsD."""
