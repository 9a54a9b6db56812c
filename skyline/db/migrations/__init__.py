"""Alembic migrations of Skyline's SQL schema (run through ``skyline.db.migrate``)."""
