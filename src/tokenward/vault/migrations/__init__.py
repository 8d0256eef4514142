"""Alembic migrations for the vault, shipped inside the package (see ``tokenward db upgrade``)."""
