import io
import itertools
import time

from llmux_jupyter.frontends.render import JupyterLiveOutput, TerminalLiveOutput, mime_bundle


def recorder():
    calls = []
    return calls, lambda bundle, metadata, update: calls.append((bundle, metadata, update))


def test_updates_are_coalesced_to_the_rate_limit():
    calls, publish = recorder()
    output = JupyterLiveOutput("markdown", 20, publish)
    started = time.monotonic()
    for _ in range(300):  # tokens far faster than the display rate
        output.append("x")
        time.sleep(0.002)
    elapsed = time.monotonic() - started
    output.finish({"model": "m"})
    live = calls[:-1]
    assert 3 <= len(live) <= elapsed * 20 + 2
    assert live[0][2] is False and all(update for _, _, update in calls[1:])
    texts = [bundle["text/markdown"] for bundle, _, _ in live]
    assert all(len(a) < len(b) for a, b in itertools.pairwise(texts))
    bundle, metadata, update = calls[-1]
    assert bundle["text/markdown"] == "x" * 300
    assert metadata == {"llmux": {"model": "m"}} and update


def test_first_token_is_shown_at_once():
    calls, publish = recorder()
    output = JupyterLiveOutput("markdown", 15, publish)
    output.append("Hi")
    assert calls[0][0]["text/markdown"] == "Hi"
    output.finish({})


def test_interrupted_answer_is_marked():
    calls, publish = recorder()
    output = JupyterLiveOutput("markdown", 15, publish)
    output.append("partial")
    output.finish({}, interrupted=True)
    assert calls[-1][0]["text/markdown"].startswith("partial\n\n*⏹ interrupted*")


def test_formats():
    assert mime_bundle("a", "text") == {"text/plain": "a"}
    assert mime_bundle("x = 1", "code")["text/markdown"] == "```\nx = 1\n```"
    fenced = "```python\nx = 1\n```"
    assert mime_bundle(fenced, "code")["text/markdown"] == fenced  # the model fenced it already
    assert mime_bundle('{"a": 1}', "json", final=True)["application/json"] == {"a": 1}
    assert "application/json" not in mime_bundle("{broken", "json", final=True)


def test_terminal_output_prints_as_it_streams():
    stream = io.StringIO()
    output = TerminalLiveOutput(stream)
    output.append("Hello")
    assert stream.getvalue() == "Hello"
    output.append(" world")
    output.finish({}, interrupted=True)
    assert stream.getvalue() == "Hello world\n[interrupted]\n"


def test_a_note_goes_under_the_answer_in_every_format():
    calls, publish = recorder()
    JupyterLiveOutput("markdown", 15, publish).finish({}, note="Nothing came.")
    assert calls[-1][0] == {"text/markdown": "*Nothing came.*", "text/plain": "Nothing came."}
    output = JupyterLiveOutput("text", 15, publish)
    output.append("x")
    output.finish({}, note="A note.")
    assert calls[-1][0] == {"text/plain": "x\n\nA note."}
    stream = io.StringIO()
    TerminalLiveOutput(stream).finish({}, note="Nothing came.")
    assert stream.getvalue() == "\n(Nothing came.)\n"
