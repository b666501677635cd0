"""The app in Chinese in a real browser (issue 21): picked in the sidebar, kept across pages and reloads, and
chosen by itself for a browser whose language is Chinese; every page and a chart speak Chinese."""

from __future__ import annotations

import re

from e2e_helpers import (
    MAIN,
    choose,
    draw_path,
    exception_messages,
    expect,
    find_canvas,
    open_page,
    screenshot,
)
from test_pages_open import PAGES

SIDEBAR = '[data-testid="stSidebar"]'
CHINESE_TITLES = {"home": "MNIST Lab", "dataset": "数据集", "train": "训练", "draw": "手写", "models": "模型"}
CHINESE_NAVIGATION = ["首页", "数据集", "训练", "手写", "模型", "我的数字"]
# Words each page shows in Chinese once drawn (a heading, a label), beside its title.
CHINESE_ON_PAGE = {"home": "从这里开始", "dataset": "逐个像素看一个数字", "train": "开始训练", "draw": "笔画宽度",
                   "models": "比较学习曲线"}
SEVEN = [(0.28, 0.25), (0.5, 0.24), (0.72, 0.25), (0.62, 0.45), (0.53, 0.62), (0.46, 0.8)]


def pick_language(page, language: str) -> None:
    """Choose in the sidebar's "Language · 语言" box, as a visitor does."""
    choose(page, page.locator(SIDEBAR).get_by_role("combobox", name=re.compile("Language")), language)
    # The choice is kept by a cookie the page writes from its script once the rerun has drawn: a page load before
    # that would open in the old language (a person is never that quick; a test is).
    code = {"简体中文": "zh_Hans", "English": "en"}[language]
    page.wait_for_function(f"() => document.cookie.split('; ').includes('mnist_lab_language={code}')")


def expect_chinese_page(page, name: str) -> None:
    assert exception_messages(page) == []
    navigation = page.locator('[data-testid="stSidebarNav"]')
    for title in CHINESE_NAVIGATION:
        expect(navigation).to_contain_text(title)
    expect(page.locator(MAIN).get_by_role("heading", name=CHINESE_TITLES[name]).first).to_be_visible()
    expect(page.locator(MAIN).get_by_text(CHINESE_ON_PAGE[name]).first).to_be_visible()
    expect(page.locator(SIDEBAR).get_by_text("当前模型")).to_be_visible()


def test_a_visitor_switches_to_chinese_and_every_page_and_a_chart_speak_it(page, app_server):
    open_page(page, app_server, "/")
    expect(page.locator(MAIN).get_by_role("heading", name="Where to go")).to_be_visible()
    pick_language(page, "简体中文")
    expect_chinese_page(page, "home")

    # Each page by its address: a new page load, so the choice has to come back from the browser's cookie.
    for path, _title, name in PAGES:
        open_page(page, app_server, path)
        expect_chinese_page(page, name)
        screenshot(page, f"{name}-zh-e2e")

    # A chart in Chinese: the Dataset page's class counts (title and legend drawn by Plotly in the page).
    open_page(page, app_server, "/dataset")
    charts = page.locator(MAIN).locator(".js-plotly-plot")
    expect(charts.filter(has_text="每个数字的图片数")).to_have_count(1)
    expect(charts.filter(has_text="每个数字的图片数").get_by_text("测试集")).to_be_visible()

    # A drawing: the answer, the canvas' buttons and the probability chart in Chinese.
    open_page(page, app_server, "/draw")
    canvas = find_canvas(page)
    expect(page.locator(MAIN).get_by_role("button", name="撤销")).to_be_visible()
    expect(page.locator(MAIN).get_by_role("button", name="清空")).to_be_visible()
    draw_path(page, canvas, SEVEN)
    expect(page.locator(MAIN).get_by_text(re.compile(r"预测结果：\d"))).to_be_visible()
    expect(page.locator(MAIN).locator(".js-plotly-plot").filter(has_text="网络的预测")).to_have_count(1)

    # And back to English, which the next page load keeps too.
    pick_language(page, "English")
    open_page(page, app_server, "/models")
    expect(page.locator(MAIN).get_by_role("heading", name="Compare learning curves")).to_be_visible()


def test_a_browser_in_chinese_opens_the_app_in_chinese(browser, app_server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    try:
        page = context.new_page()
        open_page(page, app_server, "/")
        expect_chinese_page(page, "home")
        expect(page.locator(SIDEBAR).get_by_role("combobox", name=re.compile("Language"))).to_have_value(
            re.compile("简体中文"))
    finally:
        context.close()


def test_the_train_pages_settings_keep_their_values_when_the_language_changes(page, app_server):
    """Streamlit's browser side holds a choice widget's value as the label it shows, and sends it back at the next
    interaction. After a change of language that old label matched none of the new ones, and the Train page's
    settings fell back to their first options ("Your own settings", mlp, the constant schedule): the next Start
    trained an MLP (seen on a screenshot, 2026-11-30). ui.translated_choice: the picker gives them again."""
    open_page(page, app_server, "/train")
    sidebar = page.locator(SIDEBAR)
    expect(sidebar.get_by_role("combobox", name="Architecture")).to_have_value("quick: Quick CNN")
    pick_language(page, "简体中文")
    # Any interaction sends every widget's value: a new model name (which changes no setting).
    name = sidebar.get_by_role("textbox", name="模型名称")
    name.scroll_into_view_if_needed()
    name.fill("my-zh")
    name.press("Enter")
    expect(page.locator(MAIN).get_by_text("my-zh")).to_be_visible()
    expect(sidebar.get_by_role("combobox", name="预设")).to_have_value("快速：几秒达到 99%")
    expect(sidebar.get_by_role("combobox", name="网络结构")).to_have_value("quick: 快速卷积神经网络")
    expect(sidebar.get_by_role("radio", name="先预热再降低")).to_be_checked()
    assert exception_messages(page) == []
