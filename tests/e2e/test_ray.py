"""With MNIST_LAB_RAY_ADDRESS set, Start in Chromium trains on the Ray cluster and the model lands in the store.

A server of its own (conftest's ray_app_server) pointed at the session's Ray head (tests/conftest.py's ray_head).
"""

from __future__ import annotations

import json
import re
import uuid
import zipfile
from pathlib import Path

from e2e_helpers import MAIN, exception_messages, expect, open_page, screenshot
from test_load import SAVE_TIMEOUT_S, new_visitor, saved_model_files, start_training, stop_if_running


def child_commands(pid: int) -> list[str]:
    """The command lines of the processes whose parent is `pid` (a LocalRunner's workers would be among them)."""
    commands = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if parent == pid:
                commands.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, IndexError, ValueError):
            continue  # a process that ended while we looked
    return commands


def test_start_in_chromium_trains_on_the_ray_cluster_and_the_model_lands_in_the_store(browser, ray_app_server,
                                                                                      ray_head, tmp_path_factory):
    server_url, server_pid = ray_app_server
    page = new_visitor(browser, server_url, "/")
    main = page.locator(MAIN)
    # The Home page's server line says where training runs (it may still be connecting on a fresh server).
    expect(main.get_by_text(f"Training runs in the Ray cluster at {ray_head.address}")).to_be_visible()

    name = f"on-ray-{uuid.uuid4().hex[:6]}"
    try:
        open_page(page, server_url, "/train")
        start_training(page, name, train_size=1000, epochs=1)
        expect(main.get_by_text(f"Training finished: saved as {name}")).to_be_visible(timeout=SAVE_TIMEOUT_S * 1000)
    finally:
        stop_if_running(page)

    [json_path] = saved_model_files(tmp_path_factory, name)
    info = json.loads(json_path.read_text(encoding="utf-8"))
    assert info["name"] == name and info["stopped"] is False and len(info["history"]) == 1
    assert zipfile.is_zipfile(json_path.with_suffix(".keras")) and json_path.with_suffix(".tflite").is_file()
    # Trained by a Ray worker, not by a worker process of this server (the local runner's would be its children).
    assert not [command for command in child_commands(server_pid) if "multiprocessing" in command]

    open_page(page, server_url, "/")
    expect(main.get_by_text(re.compile(rf"Training runs in the Ray cluster at {re.escape(ray_head.address)}: "
                                       r"2 CPUs on 1 node, 2 trainings at a time \(1 CPU each\)"))).to_be_visible()
    screenshot(page, "home-ray")
    assert exception_messages(page) == []
    page.context.close()
