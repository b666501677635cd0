"""MNIST Lab: explore MNIST, train a network live and watch it learn, then draw a digit and see what it thinks.

The entry point only declares the navigation and the shared sidebar; each page is its own file in views/.
Not pages/: Streamlit treats a folder of that name as an old-style multipage app until st.navigation has run
once, so the first visit to a page URL after a restart would run that page alone, without this sidebar.
"""

import streamlit as st

import ui

st.set_page_config(page_title="MNIST Lab", page_icon=":material/draw:", layout="wide")

navigation = st.navigation(
    [
        st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("views/dataset.py", title="Dataset", icon=":material/grid_view:"),
        st.Page("views/train.py", title="Train", icon=":material/model_training:"),
        st.Page("views/draw.py", title="Draw", icon=":material/draw:"),
        st.Page("views/models.py", title="Models", icon=":material/inventory_2:"),
    ]
)

with st.sidebar:
    ui.active_model_selector()
    ui.sidebar_training_status()

navigation.run()
