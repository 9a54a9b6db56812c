"""Panorama: anomalies and their verdict trail, durably in SQL."""
