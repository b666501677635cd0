"""Streamlit widgets of MNIST Lab's own (page-side, like ui.py): each a small components-v2 component."""
