"""The picker in a real kernel: its widget state reaches the front end, and a click sent over
the comm (as JupyterLab sends it) loads the model."""

from __future__ import annotations

from typing import Any

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def comm_states(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The widget states a front end received: comm_open and state updates."""
    states = []
    for message in messages:
        data = message["content"].get("data", {})
        if message["msg_type"] in ("comm_open", "comm_msg") and "state" in data:
            states.append({"comm_id": message["content"]["comm_id"], **data["state"]})
    return states


def click(kernel, model_id: str) -> list[dict[str, Any]]:
    """Send a button click over its comm; return the iopub messages until the kernel is idle."""
    client = kernel.client
    content = {"comm_id": model_id, "data": {"method": "custom", "content": {"event": "click"}}}
    request = client.session.msg("comm_msg", content)
    client.shell_channel.send(request)
    messages = []
    while True:
        message = client.get_iopub_msg(timeout=120)
        if message["parent_header"].get("msg_id") != request["header"]["msg_id"]:
            continue
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            return messages
        messages.append(message)


def test_picker_renders_and_a_comm_click_loads_the_model(kernel):
    assert kernel.run("%llm unload --all").status == "ok"
    listeners = kernel.value("len(llm.manager.events)")
    run = kernel.run("import llmux_jupyter\npicker = llmux_jupyter.picker()\npicker")
    assert run.status == "ok", run.error
    (shown,) = [m["content"]["data"] for m in run.of_type("execute_result")]
    assert WIDGET_MIME in shown
    states = comm_states(run.messages)
    ids = {state["comm_id"] for state in states}
    assert shown[WIDGET_MIME]["model_id"] in ids
    assert any("<b>smollm2</b>" in str(state.get("value")) for state in states)
    badge_id = kernel.value("picker.rows['smollm2'].badge.model_id")
    badges = [s["value"] for s in states if s["comm_id"] == badge_id and "value" in s]
    assert "not loaded" in badges[-1]

    updates = click(kernel, kernel.value("picker.rows['smollm2'].load.model_id"))
    badges = [s["value"] for s in comm_states(updates) if s["comm_id"] == badge_id and "value" in s]
    assert any("loading" in value for value in badges)
    assert "loaded on cpu" in badges[-1]
    assert kernel.value("[m.name for m in llm.ps()]") == ["smollm2"]

    run = kernel.run("%llm picker")
    assert run.status == "ok", run.error
    (display,) = run.of_type("display_data")
    assert WIDGET_MIME in display["content"]["data"]
    assert kernel.value("len(llm.manager.events)") == listeners + 2
    close = "picker.close()\nfrom llmux_jupyter.frontends.picker import ModelPicker\n" + (
        # type(), not isinstance(): a dead weakref.proxy among gc's objects raises on isinstance
        "import gc\n[w.close() for w in gc.get_objects() if type(w) is ModelPicker]"
    )
    closed = kernel.run(close)
    assert closed.status == "ok", closed.error
    assert kernel.value("len(llm.manager.events)") == listeners
    assert kernel.run("%llm unload --all").status == "ok"
