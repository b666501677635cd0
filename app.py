"""MNIST Lab: explore MNIST, train a network live and watch it learn, then draw a digit and see what it thinks.

The entry point only declares the navigation and the shared sidebar; each page is its own file in pages/
(ui.run_as_app keeps Streamlit from running one of them alone as an old-style multipage app).
"""


def main() -> None:
    import streamlit as st  # imported here, not at the top: see the end of the file

    import ui
    from ui import _

    ui.run_as_app()
    st.set_page_config(page_title="MNIST Lab", page_icon=ui.app_icon(), layout="wide")

    navigation = st.navigation(
        [
            st.Page("pages/home.py", title=_("Home"), icon=":material/home:", default=True),
            st.Page("pages/dataset.py", title=_("Dataset"), icon=":material/grid_view:"),
            st.Page("pages/train.py", title=_("Train"), icon=":material/model_training:"),
            st.Page("pages/draw.py", title=_("Draw"), icon=":material/draw:"),
            st.Page("pages/models.py", title=_("Models"), icon=":material/inventory_2:"),
            st.Page("pages/my_digits.py", title=_("My digits"), icon=":material/collections_bookmark:"),
        ]
    )

    ui.show_pending_toast()
    with st.sidebar:
        ui.global_style()
        ui.language_picker()  # issue 21: before anything else in the sidebar, where a lost reader looks first
        ui.active_model_selector()
        if navigation.url_path != "train":  # the Train page shows the queue and the running job in full
            ui.sidebar_training_status()
        ui.admin_sign_in()
        ui.sync_visitor_cookie()  # a new visitor's token into the browser, so a reload is the same visitor

    navigation.run()


# Streamlit runs this file as __main__. multiprocessing's spawn runs the main script again in every process it starts
# (training workers, the explainer), as __mp_main__: they need none of the app, and importing it there cost each of
# them 65 MB of Streamlit, plotly and ui and 0.7 s (tests/test_entry_point.py).
if __name__ == "__main__":
    main()
