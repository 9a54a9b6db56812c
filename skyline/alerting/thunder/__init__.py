"""Thunder: watches the other daemons' heartbeats and reports their health."""
