"""Streamlit dashboard (torch-free)."""
