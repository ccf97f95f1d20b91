"""Datasets built from data_manifests/, verified by sha256 before use."""
