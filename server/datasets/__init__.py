"""Datasets: their typed settings (``settings``) and the service that creates and updates them."""
